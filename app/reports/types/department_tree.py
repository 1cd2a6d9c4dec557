"""department-summary's figures: each department's own figures read in three grouped
aggregations and one read of the events added up here, then rolled up its subtree and laid out as a tree (spec §5.1).

A row is a `DepartmentRow`: the tuple the renderers print, carrying the unrounded learning time
the summary adds up before rounding once (the row's cell is rounded to 1 decimal).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from bson import Decimal128, ObjectId

from app.learning_events.models import LearningEvent
from app.platform.models import Enrollment
from app.reports.dates import StoredRange
from app.reports.reading.facts import fact_batches
from app.reports.reading.preference import report_reads
from app.reports.reading.query import CLOSED_STATUSES, FactRead, Row, range_match
from app.reports.types.figures import exact_average, is_numeric, rate, round1, scaled

# Learning events added up at a time (a slice's reply holds up to 2 × SLICE_DOCS).
EVENT_BATCH = 10_000


@dataclass
class Figures:
    """One department's figures (own, or rolled up over a subtree)."""

    enrolled: int = 0  # the cohort: enrolled in range
    withdrawn: int = 0  # of the cohort
    completed: int = 0  # of the cohort
    completions: int = 0  # completed in range (any cohort)
    score_total: int = 0  # of the completions in range, in millionths
    scored: int = 0
    seconds: float = 0.0
    overdue: int = 0
    learners: set[Any] = field(default_factory=set)

    def absorb(self, other: Figures) -> None:
        self.enrolled += other.enrolled
        self.withdrawn += other.withdrawn
        self.completed += other.completed
        self.completions += other.completions
        self.score_total += other.score_total
        self.scored += other.scored
        self.seconds += other.seconds
        self.overdue += other.overdue
        self.learners |= other.learners


class DepartmentRow(tuple[Any, ...]):
    """A row plus its unrounded learning time in seconds (not printed)."""

    seconds: float
    level: int


def make_row(dept: dict[str, Any], figures: Figures, level: int, parent_code: Any) -> Row:
    row = DepartmentRow(
        (
            dept.get("name"),
            dept.get("code"),
            figures.enrolled,
            figures.withdrawn,
            figures.completed,
            rate(figures.completed, figures.enrolled - figures.withdrawn),
            figures.completions,
            exact_average(figures.score_total, figures.scored),
            len(figures.learners),
            round1(figures.seconds / 3600),
            figures.overdue,
            level,
            parent_code,
        )
    )
    row.seconds = figures.seconds
    row.level = level
    return row


def _count(status: str) -> dict[str, Any]:
    return {"$sum": {"$cond": [{"$eq": ["$status", status]}, 1, 0]}}


def _seconds(value: Any) -> float:
    """A duration as `$sum` counts it: a number (not a boolean), else nothing."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal128):
        return float(value.to_decimal())
    return 0


async def _grouped(collection: Any, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cursor = await collection.aggregate(pipeline, allowDiskUse=True)
    return list(await cursor.to_list())


async def own_figures(
    ids: list[ObjectId], date_range: StoredRange, within: dict[str, Any], *, every: bool = False
) -> dict[Any, Figures]:
    """Each department's own figures (the records denormalised onto it). `every`: `ids` are
    all the departments, so the reads of a date range are that range alone (its own index; a
    `$in` of every department id adds nothing, and some servers scan the collection for it);
    figures of a department not in `ids` are never shown."""
    figures: dict[Any, Figures] = defaultdict(Figures)
    in_range = range_match(date_range)
    depts: dict[str, Any] = {} if every else {"department_id": {"$in": ids}}
    enrollments = report_reads(Enrollment.get_pymongo_collection())
    for doc in await _grouped(
        enrollments,
        [
            {"$match": {**depts, "enrolled_at": in_range, **within}},
            {
                "$group": {
                    "_id": "$department_id",
                    "n": {"$sum": 1},
                    "withdrawn": _count("withdrawn"),
                    "completed": _count("completed"),
                }
            },
        ],
    ):
        own = figures[doc["_id"]]
        own.enrolled, own.withdrawn, own.completed = doc["n"], doc["withdrawn"], doc["completed"]
    for doc in await _grouped(
        enrollments,
        [
            {"$match": {**depts, "completed_at": in_range, **within}},
            {
                "$group": {
                    "_id": "$department_id",
                    "n": {"$sum": 1},
                    "total": {"$sum": scaled("$score")},
                    "scored": {"$sum": is_numeric("$score")},
                }
            },
        ],
    ):
        own = figures[doc["_id"]]
        own.completions, own.score_total, own.scored = doc["n"], doc["total"], doc["scored"]
    for doc in await _grouped(
        enrollments,
        [
            # Two stages: the indexed range first, the status filter after (one $match with a
            # $nin makes some planners give up the index).
            # Always by department: `(department_id, due_at)` is the index a due date has.
            {
                "$match": {
                    "department_id": {"$in": ids},
                    "due_at": {"$lt": date_range.end},
                    **within,
                }
            },
            {"$match": {"status": {"$nin": list(CLOSED_STATUSES)}}},
            {"$group": {"_id": "$department_id", "n": {"$sum": 1}}},
        ],
    ):
        figures[doc["_id"]].overdue = doc["n"]
    # The events, the one read that grows with the activity, are added up here rather than
    # grouped by the server, read as any fact read over a date range is: in slices of the
    # range, each one short server call (a server grouping millions of events in one call, or
    # building a whole range's result before its first batch, starves everything else on a
    # single-threaded server, the job's own lease heartbeat included).
    events = FactRead(
        reads=({**depts, "occurred_at": in_range, **within},),
        keep=None,
        projection={"_id": 0, "department_id": 1, "user_id": 1, "payload.durationSeconds": 1},
        joins=(),
        to_row=lambda doc, _: (),
        slice_field="occurred_at",
    )
    collection = report_reads(LearningEvent.get_pymongo_collection())
    async with aclosing(fact_batches(collection, events, EVENT_BATCH)) as batches:
        async for docs in batches:
            for doc in docs:
                own = figures[doc.get("department_id")]
                if "user_id" in doc:
                    own.learners.add(doc["user_id"])
                payload = doc.get("payload")
                own.seconds += _seconds(
                    payload.get("durationSeconds") if isinstance(payload, dict) else None
                )
    return figures


def tree_rows(
    departments: list[dict[str, Any]], figures: dict[Any, Figures], *, roll_up: bool
) -> Iterable[Row]:
    """Rolled up: every department's row covers its subtree among `departments`; a parent comes
    first, then its children by name, each a level deeper. Otherwise one row per department with
    its own figures, by name."""
    by_id = {d["_id"]: d for d in departments}
    codes = {d["_id"]: d.get("code") for d in departments}
    if not roll_up:
        for dept in sorted(departments, key=_by_name):
            yield make_row(dept, figures.get(dept["_id"], Figures()), 0, None)
        return
    children: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    roots: list[dict[str, Any]] = []
    for dept in departments:
        parent = dept.get("parent_id")
        (children[parent] if parent in by_id else roots).append(dept)

    def subtree(dept: dict[str, Any]) -> Figures:
        total = Figures()
        total.absorb(figures.get(dept["_id"], Figures()))
        for child in children[dept["_id"]]:
            total.absorb(subtree(child))
        return total

    def walk(dept: dict[str, Any], level: int) -> Iterable[Row]:
        yield make_row(dept, subtree(dept), level, codes.get(dept.get("parent_id")))
        for child in sorted(children[dept["_id"]], key=_by_name):
            yield from walk(child, level + 1)

    for root in sorted(roots, key=_by_name):
        yield from walk(root, 0)


def _by_name(dept: dict[str, Any]) -> tuple[str, str]:
    return (str(dept.get("name") or "").casefold(), str(dept["_id"]))
