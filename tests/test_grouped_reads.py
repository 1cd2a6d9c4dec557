"""Reports grouped in the worker give the figures the server's aggregation gives, on the
documents that tell the two apart: scores stored as booleans, strings, integers and decimals,
dates that are missing or not dates, unknown statuses, a course without its document, a
mandatory flag stored as a number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bson import Decimal128, ObjectId

from app.common.time import zone
from app.learning_events.models import LearningEvent
from app.platform.models import Enrollment
from app.reports.dates import StoredRange
from app.reports.types import get_report_type
from app.reports.types.course_figures import MS_PER_DAY
from app.reports.types.department_tree import own_figures
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


async def _server_activity(params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """learning-activity's rows as the server's grouping (`_grouped`) makes them."""
    definition: Any = get_report_type("learning-activity")
    resolved = definition.resolve(definition.parse(params), DataScope(), START)
    typed = definition.typed(resolved.parameters)
    sort = {"$sort": {"_id.period": 1, "_id.type": 1}}
    cursor = await LearningEvent.get_pymongo_collection().aggregate(
        [*definition._grouped(typed, resolved.scope), sort]
    )
    tz = zone(params["timezone"])
    return [
        (d["_id"]["period"].replace(tzinfo=UTC).astimezone(tz).date(), d["_id"].get("type"),
         d["events"], d["learners"])
        for d in await cursor.to_list()
    ]  # fmt: skip


async def test_learning_activity_grouped_in_the_worker_matches_the_server(
    resources: Resources,
) -> None:
    dept = await f.department("Ops")
    users = [ObjectId() for _ in range(5)]
    kinds = ["lesson-started", "quiz-submitted", None, "course-started"]
    start = datetime(2024, 12, 28, tzinfo=UTC)
    times = [start + timedelta(minutes=313 * i) for i in range(700)]
    docs: list[dict[str, Any]] = [
        {
            "type": kinds[i % 4] if i % 11 else "lesson-started",
            "user_id": users[(i * 7) % 5],
            # Every 5 h 13 min from late December across the new year and a DST change.
            "occurred_at": times[i],
            "department_id": dept.id,
            "course_id": ObjectId(),
            "payload": {},
            "created_at": START,
            "updated_at": START,
        }
        for i in range(700)
    ]
    await LearningEvent.get_pymongo_collection().insert_many(docs)
    for tz in ("UTC", "America/New_York", "Asia/Kolkata"):
        for granularity in ("day", "week", "month"):
            params = {"dateRange": Q1, "timezone": tz, "granularity": granularity}
            rows, _, _ = await run("learning-activity", params, batch_size=7)
            assert rows == await _server_activity(params), (tz, granularity)
            first, last = (
                datetime(2025, 1, 1, tzinfo=ZoneInfo(tz)),
                datetime(2025, 4, 1, tzinfo=ZoneInfo(tz)),
            )
            assert rows and sum(r[2] for r in rows) == sum(first <= t < last for t in times)
    typed = {"dateRange": Q1, "timezone": "UTC", "eventTypes": ["quiz-submitted"]}
    rows, _, _ = await run("learning-activity", typed)
    assert rows == await _server_activity(typed)
    assert {r[1] for r in rows} == {"quiz-submitted"}


async def test_department_events_added_up_in_the_worker_match_the_server(
    resources: Resources,
) -> None:
    """Learners and learning time per department, from events whose durations are numbers,
    booleans, strings, decimals, missing or under a payload that is not a document."""
    ops, hr = await f.department("Ops"), await f.department("HR")
    assert ops.id is not None and hr.id is not None
    users = [ObjectId() for _ in range(4)]
    durations: list[Any] = [60, 12.5, True, "30", Decimal128("7.25"), None, 0, 1e6, 45]
    docs: list[dict[str, Any]] = []
    for i, duration in enumerate(durations * 3):
        payload: Any = {"durationSeconds": duration} if i % 7 else {}
        docs.append(
            {
                "type": "lesson-completed",
                "user_id": users[i % 4] if i % 5 else None,
                "occurred_at": START + timedelta(hours=29 * i),
                "department_id": (ops.id, hr.id)[i % 2],
                "course_id": ObjectId(),
                "payload": payload if i != 4 else [payload],
                "created_at": START,
                "updated_at": START,
            }
        )
    await LearningEvent.get_pymongo_collection().insert_many(docs)
    stored = StoredRange.model_validate(
        {
            "preset": "custom",
            "from": "2025-01-01",
            "to": "2025-03-31",
            "start": datetime(2025, 1, 1, tzinfo=UTC),
            "end": datetime(2025, 4, 1, tzinfo=UTC),
            "timezone": "UTC",
        }
    )
    for every in (True, False):
        figures = await own_figures([ops.id, hr.id], stored, {}, every=every)
        cursor = await LearningEvent.get_pymongo_collection().aggregate(
            [
                {"$match": {"occurred_at": {"$gte": stored.start, "$lt": stored.end}}},
                {
                    "$group": {
                        "_id": {"d": "$department_id", "u": "$user_id"},
                        "seconds": {"$sum": "$payload.durationSeconds"},
                    }
                },
            ]
        )
        server: dict[Any, tuple[set[Any], float]] = {}
        for doc in await cursor.to_list():
            learners, seconds = server.get(doc["_id"]["d"], (set(), 0.0))
            learners.add(doc["_id"]["u"])
            value = doc["seconds"]
            value = float(value.to_decimal()) if isinstance(value, Decimal128) else value
            server[doc["_id"]["d"]] = (learners, seconds + value)
        for dept in (ops.id, hr.id):
            assert figures[dept].learners == server[dept][0]
            assert abs(figures[dept].seconds - server[dept][1]) < 1e-9, dept
        assert figures[ops.id].seconds > 0 and len(figures[hr.id].learners) >= 2
