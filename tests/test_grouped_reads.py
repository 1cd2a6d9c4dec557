"""Reports grouped in the worker give the figures the server's aggregation gives, on the
documents that tell the two apart: scores stored as booleans, strings, integers and decimals,
dates that are missing or not dates, unknown statuses, a course without its document, a
mandatory flag stored as a number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Decimal128, ObjectId

from app.platform.models import Enrollment
from app.reports.types import get_report_type
from app.reports.types.course_figures import MS_PER_DAY
from app.reports.types.figures import exact_average, rate
from app.runtime.resources import Resources
from app.security import DataScope
from tests import factories as f
from tests.test_report_types import run

Q1 = {"preset": "custom", "from": "2025-01-01", "to": "2025-03-31"}
START = datetime(2025, 1, 10, 9, tzinfo=UTC)


async def _odd_enrollments() -> None:
    dept = await f.department("Ops")
    await f.user("Ada", dept=dept)
    crs = await f.course("ZZ9", category="engineering", mandatory=True)
    other = await f.course("AA1", category="productivity")
    # A course whose document is gone, and one whose mandatory flag is a number.
    gone = ObjectId()
    numeric_flag = await f.course("MM5", category="engineering")
    await numeric_flag.get_pymongo_collection().update_one(
        {"_id": numeric_flag.id}, {"$set": {"is_mandatory": 1}}
    )
    scores: list[Any] = [
        71.5, True, "88", 90, Decimal128("66.25"), None, 0.0000005, 2.5e-6, 60.35, 1e300,
    ]  # fmt: skip
    docs = []
    for i, score in enumerate(scores):
        for course_id in (crs.id, other.id, gone, numeric_flag.id):
            enrolled = START + timedelta(days=i, hours=i)
            status = ("completed", "completed", "failed", "withdrawn", "in-progress", "odd")[i % 6]
            completed: Any = enrolled + timedelta(days=3, minutes=7 * i)
            if i == 3:
                completed = "2025-02-01"  # not a date
            if i == 4:
                completed = None
            docs.append(
                {
                    "user_id": ObjectId(),
                    "course_id": course_id,
                    "department_id": dept.id,
                    "status": status if i != 7 else "completed",
                    "enrolled_at": enrolled if i != 8 else "2025-01-18",
                    "completed_at": completed,
                    "score": score,
                    "progress_percent": 10.0,
                    "created_at": enrolled if i != 8 else START,
                    "updated_at": START,
                }
            )
    await Enrollment.get_pymongo_collection().insert_many(docs)


async def _server_rows(params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows as the server's aggregation (`_pipeline`, sorted by course code) makes them."""
    definition: Any = get_report_type("course-completion")
    resolved = definition.resolve(definition.parse(params), DataScope(), START)
    typed = definition.typed(resolved.parameters)
    pipeline = [*definition._pipeline(typed, resolved.scope), {"$sort": {"course.code": 1}}]
    cursor = await Enrollment.get_pymongo_collection().aggregate(pipeline)
    rows = []
    for doc in await cursor.to_list():
        course = doc.get("course") or {}
        enrolled, withdrawn, completed = doc["enrolled"], doc["withdrawn"], doc["completed"]
        rows.append(
            (course.get("code"), course.get("title"), course.get("category"),
             course.get("is_mandatory"), enrolled, doc["inProgress"], completed, doc["failed"],
             withdrawn, rate(completed, enrolled - withdrawn),
             exact_average(doc.get("scoreTotal"), doc.get("scored", 0)),
             exact_average(doc.get("msTotal"), doc.get("timed", 0), MS_PER_DAY))
        )  # fmt: skip
    return rows


async def test_course_completion_grouped_in_the_worker_matches_the_server(
    resources: Resources,
) -> None:
    await _odd_enrollments()
    for extra in ({}, {"mandatoryOnly": True}, {"category": "engineering"}):
        params = {"dateRange": Q1, "timezone": "UTC", **extra}
        rows, _, _ = await run("course-completion", params, batch_size=3)
        expected = await _server_rows(params)
        assert rows == expected, extra
    rows, _, _ = await run("course-completion", {"dateRange": Q1, "timezone": "UTC"})
    # The course without its document comes first (no code), with every enrollment counted.
    assert rows[0][:5] == (None, None, None, None, 9)
    assert [r[0] for r in rows[1:]] == ["AA1", "MM5", "ZZ9"]
    mandatory, _, _ = await run("course-completion", {"dateRange": Q1, "mandatoryOnly": True})
    assert [r[0] for r in mandatory] == ["ZZ9"]  # 1 is not true
