"""Whether a quiz submission passed (assessment-results): `score ≥ its course's passing score`,
judged in the worker for each submission (`judge`: the detail rows), or by the server through an
expression over the courses' passing scores (`passing_scores`, `passed_by_course`: the rows
grouped by course).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import Decimal128, ObjectId

from app.platform.models import Course
from app.reports.reading.query import object_ids


def judge(score: Any, passing: Any) -> bool | None:
    """Whether a submission passed: `score ≥ passing` when both are numbers (int or float, not
    bool), compared as the server compares (NaN below every number, equal to itself); else
    None (it cannot be judged)."""
    if not (_is_number(score) and _is_number(passing)):
        return None
    if passing != passing:  # NaN
        return True
    if score != score:
        return False
    return bool(score >= passing)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _server_number(value: Any) -> bool:
    """What `$isNumber` accepts: int, long, double, decimal (not bool)."""
    return isinstance(value, int | float | Decimal128) and not isinstance(value, bool)


async def passing_scores(course_ids: Sequence[str] | None) -> list[tuple[ObjectId, Any]]:
    """The numeric passing scores of the courses `course_ids` (None: of all courses), by course
    id, in id order: a small read of the courses."""
    query: dict[str, Any] = {"passing_score": {"$ne": None}}
    if course_ids is not None:
        query["_id"] = {"$in": object_ids(course_ids)}
    cursor = Course.get_pymongo_collection().find(query, {"passing_score": 1})
    scores = [(doc["_id"], doc["passing_score"]) async for doc in cursor]
    return sorted((course, score) for course, score in scores if _server_number(score))


def passed_by_course(table: Sequence[tuple[ObjectId, Any]]) -> Any:
    """An expression for whether a submission with a numeric score passed: `score ≥` its
    course's passing score in `table` (sorted by id), null for a course not in it. A balanced
    tree of comparisons over the ids, so a submission costs about log2(courses) comparisons on
    the server, not one per course (as a `$switch` would) nor a join."""
    if not table:
        return None
    if len(table) == 1:
        ((course, passing),) = table
        return {
            "$cond": [{"$eq": ["$course_id", course]}, {"$gte": ["$payload.score", passing]}, None]
        }
    middle = len(table) // 2
    return {
        "$cond": [
            {"$lt": ["$course_id", table[middle][0]]},
            passed_by_course(table[:middle]),
            passed_by_course(table[middle:]),
        ]
    }
