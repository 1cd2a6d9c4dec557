"""Every report type's figures against hand-computed expectations on tests/reports_fixture.py.

Each run goes the way the worker runs it: resolve, store the resolved parameters and scope as
JSON, then count and fetch (in small batches) from the stored copies only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import pytest

from app.common.time import as_utc
from app.errors import Forbidden, NotFound, ValidationFailed
from app.reports.formats import FORMATS
from app.reports.types import REPORT_TYPES, get_report_type
from app.reports.types.columns import column_document
from app.reports.types.figures import rate
from app.runtime.resources import Resources
from app.security import DataScope, Role
from tests.factories import dt
from tests.reports_fixture import NOW, Dataset, build_dataset

MARCH = {"preset": "custom", "from": "2026-03-01", "to": "2026-03-31"}
ADMIN = DataScope(description="all data (admin)")


async def run(
    key: str,
    params: Mapping[str, Any],
    scope: DataScope = ADMIN,
    *,
    now: datetime = NOW,
    batch_size: int = 2,
) -> tuple[list[tuple[Any, ...]], dict[str, Any], list[tuple[str, str]]]:
    """-> (rows, stored resolved parameters, summary figures); checks count == rows."""
    definition = get_report_type(key)
    resolved = definition.resolve(definition.parse(params), scope, now)
    stored = json.loads(json.dumps(resolved.parameters))
    stored_scope = DataScope.from_document(json.loads(json.dumps(resolved.scope.to_document())))
    rows: list[tuple[Any, ...]] = []
    summary = definition.summarizer()
    async for batch in definition.fetch(stored, stored_scope, batch_size):
        assert 0 < len(batch) <= batch_size
        summary.add(batch)
        # Naive datetimes in rows are UTC (the renderers' contract): compare them as aware.
        rows.extend(tuple(as_utc(v) if isinstance(v, datetime) else v for v in r) for r in batch)
    assert await definition.count(stored, stored_scope) == len(rows)
    columns = definition.columns_for(stored)
    assert all(len(row) == len(columns) for row in rows)
    return rows, stored, [(f.label, f.text) for f in summary.figures()]


def cols(key: str, rows: list[tuple[Any, ...]], *names: str) -> list[tuple[Any, ...]]:
    keys = [c.key for c in REPORT_TYPES[key].columns]
    index = [keys.index(n) for n in names]
    return [tuple(row[i] for i in index) for row in rows]


@pytest.fixture
async def data(resources: Resources) -> Dataset:
    return await build_dataset()


# --- catalogue ---------------------------------------------------------------------------------


def test_catalogue_shape() -> None:
    assert list(REPORT_TYPES) == [
        "learner-progress",
        "course-completion",
        "department-summary",
        "learning-activity",
        "assessment-results",
        "compliance-status",
    ]
    for definition in REPORT_TYPES.values():
        schema = definition.parameters_schema()
        assert schema.get("additionalProperties") is False
        assert schema.get("examples"), definition.key
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{definition.key}.{name}"
        for example in schema["examples"]:
            definition.parse(example)
        assert set(definition.default_sort) <= {c.key for c in definition.columns}
        assert definition.formats == tuple(FORMATS)  # every type offers every format
        assert all(isinstance(column_document(c)["type"], str) for c in definition.columns)
    assert [k for k, d in REPORT_TYPES.items() if Role.LEARNER in d.roles] == ["learner-progress"]
    assert Role.INSTRUCTOR not in REPORT_TYPES["department-summary"].roles


def test_unknown_report_type() -> None:
    with pytest.raises(NotFound):
        get_report_type("nope")
    with pytest.raises(ValidationFailed) as info:
        get_report_type("nope", field="reportType")
    assert info.value.errors and info.value.errors[0].field == "reportType"
    assert "learner-progress" in (info.value.errors[0].allowed or [])


@pytest.mark.parametrize(
    ("key", "params", "field"),
    [
        ("learner-progress", {"timezone": "Mars/Olympus"}, "parameters.timezone"),
        ("learner-progress", {"departmentIds": ["xyz"]}, "parameters.departmentIds.0"),
        ("learner-progress", {"statuses": ["done"]}, "parameters.statuses.0"),
        ("learner-progress", {"dateField": "dueAt"}, "parameters.dateField"),
        ("learner-progress", {"dateRange": {"preset": "custom"}}, "parameters.dateRange.from"),
        ("course-completion", {"courseIds": ["a" * 24] * 501}, "parameters.courseIds"),
        ("learning-activity", {"granularity": "hour"}, "parameters.granularity"),
        ("learning-activity", {"eventTypes": ["QUIZ_PASSED"]}, "parameters.eventTypes.0"),
        ("assessment-results", {"groupBy": "learner"}, "parameters.groupBy"),
        ("compliance-status", {"dueWithinDays": -1}, "parameters.dueWithinDays"),
        ("compliance-status", {"dateRange": {"preset": "today"}}, "parameters.dateRange"),
        ("department-summary", {"courseIds": ["a" * 24]}, "parameters.courseIds"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    key: str, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        get_report_type(key).parse(params)
    assert field in [e.field for e in info.value.errors or []]


def test_duplicate_ids_collapse_and_are_lowercased() -> None:
    params = get_report_type("learner-progress").parse(
        {"departmentIds": ["AAAAAAAAAAAAAAAAAAAAAAAA", "aaaaaaaaaaaaaaaaaaaaaaaa"]}
    )
    assert params.department_ids == ["a" * 24]


# --- learner-progress --------------------------------------------------------------------------


async def test_learner_progress(data: Dataset) -> None:
    rows, stored, figures = await run("learner-progress", {"dateRange": MARCH})
    assert stored["dateRange"]["start"] == "2026-03-01T00:00:00Z"
    assert stored["dateRange"]["end"] == "2026-04-01T00:00:00Z"
    assert stored["now"] == "2026-03-20T12:00:00Z"
    # Sorted by department, learner (case-insensitive: "alice" before "Bob"), course code.
    assert cols("learner-progress", rows, "departmentName", "learnerName", "courseCode") == [
        ("Engineering", "alice Adams", "PY201"),
        ("Engineering", "alice Adams", "SEC101"),
        ("Engineering", "Bob Brown", "PY201"),
        ("Engineering", "Bob Brown", "SEC101"),
        ("Platform", "Carol Chen", "NEG301"),
        ("Platform", "Carol Chen", "PY201"),
        ("Platform", "Carol Chen", "SEC101"),
        ("Sales", "Dave Diaz", "SEC101"),
    ]
    assert rows[1] == (
        "alice Adams",
        "alice@example.test",
        "Engineering",
        "SEC101",
        "Security Basics",
        "completed",
        100.0,
        90.0,
        dt(2026, 3, 2, 9),
        dt(2026, 3, 10),
        dt(2026, 3, 5, 9),
        45,
        dt(2026, 3, 5, 9),
        False,
    )
    # Only alice's Python enrollment is overdue (due 03-15, in progress); Bob's withdrawn one
    # due 03-10 is not.
    assert [r[13] for r in rows] == [True, False, False, False, False, False, False, False]
    assert rows[0][7] is None and rows[0][10] is None  # no score, not completed: empty cells
    assert all(isinstance(r[8], datetime) and r[8].utcoffset() is not None for r in rows)
    # 3 completed of 8 - 1 withdrawn = 42.857 %; average score (90 + 75 + 70) / 3 = 78.3.
    assert figures == [
        ("Enrollments", "8"),
        ("Withdrawn", "1"),
        ("Completed", "3"),
        ("Completion rate", "42.9%"),
        ("Average score (completed)", "78.3"),
        ("Overdue", "1"),
    ]


async def test_learner_progress_timezones(data: Dataset) -> None:
    # Los Angeles March = [03-01 08:00Z, 04-01 07:00Z): drops e6 (02-28 local), keeps e9.
    la, stored, _ = await run(
        "learner-progress", {"dateRange": MARCH, "timezone": "America/Los_Angeles"}
    )
    assert stored["dateRange"]["start"] == "2026-03-01T08:00:00Z"
    assert stored["dateRange"]["end"] == "2026-04-01T07:00:00Z"
    assert ("Carol Chen", "PY201") not in cols("learner-progress", la, "learnerName", "courseCode")
    assert ("Carol Chen", "NEG301") in cols("learner-progress", la, "learnerName", "courseCode")
    assert len(la) == 7
    # Tokyo March = [02-28 15:00Z, 03-31 15:00Z): keeps e6, drops e9 (1 April local).
    tokyo, _, _ = await run("learner-progress", {"dateRange": MARCH, "timezone": "Asia/Tokyo"})
    pairs = cols("learner-progress", tokyo, "learnerName", "courseCode")
    assert ("Carol Chen", "PY201") in pairs and ("Carol Chen", "NEG301") not in pairs
    assert len(tokyo) == 7


async def test_learner_progress_filters(data: Dataset) -> None:
    completed, _, _ = await run(
        "learner-progress", {"dateRange": MARCH, "dateField": "completedAt"}
    )
    assert cols("learner-progress", completed, "learnerName", "courseCode") == [
        ("alice Adams", "SEC101"),
        ("Bob Brown", "SEC101"),
        ("Carol Chen", "PY201"),
    ]
    overdue, _, _ = await run("learner-progress", {"dateRange": MARCH, "overdueOnly": True})
    assert cols("learner-progress", overdue, "learnerName", "courseCode") == [
        ("alice Adams", "PY201")
    ]
    # e7 (failed, due 03-01) is overdue too once its February enrollment is in range.
    q1 = {"preset": "custom", "from": "2026-02-01", "to": "2026-03-31"}
    overdue_q1, _, _ = await run(
        "learner-progress",
        {"dateRange": q1, "overdueOnly": True, "statuses": ["failed", "completed"]},
    )
    assert cols("learner-progress", overdue_q1, "learnerName", "courseCode") == [
        ("Dave Diaz", "NEG301")
    ]
    by_status, _, _ = await run(
        "learner-progress",
        {
            "dateRange": MARCH,
            "statuses": ["enrolled"],
            "courseIds": [data.id(data.sec)],
            "departmentIds": [data.id(data.plat), data.id(data.sales)],
        },
    )
    assert cols("learner-progress", by_status, "learnerName", "courseCode") == [
        ("Carol Chen", "SEC101"),
        ("Dave Diaz", "SEC101"),
    ]


async def test_learner_progress_scopes(data: Dataset) -> None:
    learner = DataScope(user_id=data.id(data.bob), description="own")
    rows, _, _ = await run("learner-progress", {"dateRange": MARCH}, learner)
    assert cols("learner-progress", rows, "learnerName", "courseCode") == [
        ("Bob Brown", "PY201"),
        ("Bob Brown", "SEC101"),
    ]
    manager = DataScope(department_ids=frozenset({data.id(data.eng), data.id(data.plat)}))
    rows, _, _ = await run("learner-progress", {"dateRange": MARCH}, manager)
    assert {r[2] for r in rows} == {"Engineering", "Platform"}
    rows, _, _ = await run(
        "learner-progress", {"dateRange": MARCH, "departmentIds": [data.id(data.plat)]}, manager
    )
    assert {r[2] for r in rows} == {"Platform"}
    instructor = DataScope(course_ids=frozenset({data.id(data.py)}))
    rows, _, _ = await run("learner-progress", {"dateRange": MARCH}, instructor)
    assert {r[3] for r in rows} == {"PY201"}
    # A manager with no departments sees nothing, never everything.
    rows, _, _ = await run(
        "learner-progress", {"dateRange": MARCH}, DataScope(department_ids=frozenset())
    )
    assert rows == []


async def test_out_of_scope_ids_are_403_naming_them(data: Dataset) -> None:
    manager = DataScope(department_ids=frozenset({data.id(data.eng), data.id(data.plat)}))
    definition = get_report_type("learner-progress")
    with pytest.raises(Forbidden) as info:
        definition.resolve(
            {"departmentIds": [data.id(data.eng), data.id(data.sales)]}, manager, NOW
        )
    assert info.value.status == 403
    assert info.value.extra["outOfScope"] == [data.id(data.sales)]
    assert data.id(data.sales) in str(info.value.detail)
    instructor = DataScope(course_ids=frozenset({data.id(data.py)}))
    with pytest.raises(Forbidden) as info:
        get_report_type("assessment-results").resolve(
            {"courseIds": [data.id(data.sec), data.id(data.py)]}, instructor, NOW
        )
    assert info.value.extra == {"field": "courseIds", "outOfScope": [data.id(data.sec)]}
    # Learners run learner-progress only.
    with pytest.raises(Forbidden):
        get_report_type("compliance-status").resolve({}, DataScope(user_id=data.id(data.bob)), NOW)


# --- course-completion -------------------------------------------------------------------------


async def test_course_completion(data: Dataset) -> None:
    rows, _, figures = await run("course-completion", {"dateRange": MARCH})
    assert rows == [
        # e9 only (e7 enrolled in February): 0 of 1 completed is 0.0 %, no scores -> empty.
        ("NEG301", "Negotiation", "sales", True, 1, 0, 0, 0, 0, 0.0, None, None),
        # e2 in progress, e4 withdrawn, e6 completed (70, 7 days): 1 / (3 - 1) = 50 %.
        ("PY201", "Python", "engineering", False, 3, 1, 1, 0, 1, 50.0, 70.0, 7.0),
        # e1 (90, 3 days) and e3 (75, 12 days) completed, e5 and e8 enrolled.
        ("SEC101", "Security Basics", "compliance", True, 4, 0, 2, 0, 0, 50.0, 82.5, 7.5),
    ]
    assert figures == [
        ("Courses", "3"),
        ("Enrolled", "8"),
        ("Withdrawn", "1"),
        ("Completed", "3"),
        ("Completion rate", "42.9%"),
    ]
    mandatory, _, _ = await run("course-completion", {"dateRange": MARCH, "mandatoryOnly": True})
    assert [r[0] for r in mandatory] == ["NEG301", "SEC101"]
    engineering, _, _ = await run(
        "course-completion", {"dateRange": MARCH, "category": "engineering"}
    )
    assert [r[0] for r in engineering] == ["PY201"]
    sales_feb, _, _ = await run(
        "course-completion",
        {
            "dateRange": {"preset": "custom", "from": "2026-02-01", "to": "2026-02-28"},
            "departmentIds": [data.id(data.sales)],
        },
    )
    assert sales_feb == [("NEG301", "Negotiation", "sales", True, 1, 0, 0, 1, 0, 0.0, None, None)]


async def test_course_completion_empty_set_gives_empty_cells(data: Dataset) -> None:
    # 5 March: only Bob's withdrawn Python enrollment -> the rate has no denominator.
    one_day = {"preset": "custom", "from": "2026-03-05", "to": "2026-03-05"}
    rows, _, figures = await run("course-completion", {"dateRange": one_day})
    assert rows == [("PY201", "Python", "engineering", False, 1, 0, 0, 0, 1, None, None, None)]
    assert ("Completion rate", "—") in figures
    nothing, _, _ = await run(
        "course-completion",
        {"dateRange": {"preset": "custom", "from": "2025-01-01", "to": "2025-01-31"}},
    )
    assert nothing == []


# --- department-summary ------------------------------------------------------------------------


async def test_department_summary(data: Dataset) -> None:
    rows, _, figures = await run("department-summary", {"dateRange": MARCH})
    assert rows == [
        # Engineering rolls up Platform: e1-e6, e9 enrolled, e4 withdrawn, e1, e3, e6 completed
        # (3 ÷ (7 − 1)); completed in range e1, e3, e6 ((90 + 75 + 70) ÷ 3 = 78.3); Alice, Bob,
        # Carol active, 9000 s; e2 overdue.
        ("Engineering", "ENG", 7, 1, 3, 50.0, 3, 78.3, 3, 2.5, 1, 0, None),
        # e5, e6, e9 enrolled; e6 completed (70); Carol active, 3600 + 1800 s; none overdue.
        ("Platform", "PLT", 3, 0, 1, 33.3, 1, 70.0, 1, 1.5, 0, 1, "ENG"),
        # e8 enrolled; nothing completed (no average); Dave active (v10); e7 overdue.
        ("Sales", "SAL", 1, 0, 0, 0.0, 0, None, 1, 0.0, 1, 0, None),
    ]
    # Each row's rate is its shown completed ÷ (enrolled − withdrawn).
    assert all(r[5] == rate(r[4], r[2] - r[3]) for r in rows)
    assert figures == [
        ("Departments", "3"),
        ("Enrolled in range", "8"),
        ("Withdrawn (of enrolled)", "1"),
        ("Completed (of enrolled)", "3"),
        # Each enrollment once (Platform's are in Engineering's row): 3 ÷ (8 − 1).
        ("Completion rate", "42.9%"),
        ("Completions in range", "3"),
        ("Learning hours", "2.5"),
        ("Overdue", "2"),
    ]


async def test_department_summary_scope_and_sub_departments(data: Dataset) -> None:
    manager = DataScope(department_ids=frozenset({data.id(data.eng), data.id(data.plat)}))
    rows, _, _ = await run("department-summary", {"dateRange": MARCH}, manager)
    assert [r[0] for r in rows] == ["Engineering", "Platform"]
    eng = [data.id(data.eng)]
    rows, _, _ = await run("department-summary", {"dateRange": MARCH, "departmentIds": eng})
    assert [r[0] for r in rows] == ["Engineering", "Platform"]
    rows, _, _ = await run(
        "department-summary",
        {"dateRange": MARCH, "departmentIds": eng, "includeSubDepartments": False},
        manager,
    )
    assert [r[0] for r in rows] == ["Engineering"]
    # Its own figures only: e1-e4 enrolled, e4 withdrawn, e1 and e3 completed (2 ÷ 3).
    assert rows[0][2:8] == (4, 1, 2, 66.7, 2, 82.5)
    with pytest.raises(Forbidden) as info:
        get_report_type("department-summary").resolve(
            {"departmentIds": [data.id(data.sales)]}, manager, NOW
        )
    assert info.value.extra["outOfScope"] == [data.id(data.sales)]


async def test_department_summary_empty_range(data: Dataset) -> None:
    january = {"preset": "custom", "from": "2026-01-01", "to": "2026-01-31"}
    rows, _, _ = await run("department-summary", {"dateRange": january})
    assert rows == [
        ("Engineering", "ENG", 0, 0, 0, None, 0, None, 0, 0.0, 0, 0, None),
        ("Platform", "PLT", 0, 0, 0, None, 0, None, 0, 0.0, 0, 1, "ENG"),
        ("Sales", "SAL", 0, 0, 0, None, 0, None, 0, 0.0, 0, 0, None),
    ]


# --- learning-activity -------------------------------------------------------------------------


async def test_learning_activity_by_day_week_month(data: Dataset) -> None:
    days, _, figures = await run("learning-activity", {"dateRange": MARCH})
    assert days == [
        (date(2026, 3, 2), "lesson-completed", 1, 1),
        (date(2026, 3, 5), "quiz-submitted", 1, 1),
        (date(2026, 3, 6), "quiz-submitted", 1, 1),
        (date(2026, 3, 7), "quiz-submitted", 1, 1),
        (date(2026, 3, 11), "quiz-submitted", 1, 1),
        (date(2026, 3, 15), "quiz-submitted", 1, 1),
        (date(2026, 3, 20), "quiz-submitted", 1, 1),
        (date(2026, 3, 29), "lesson-completed", 2, 1),
    ]
    assert ("Events", "9") in figures
    weeks, _, _ = await run("learning-activity", {"dateRange": MARCH, "granularity": "week"})
    assert weeks == [
        (date(2026, 3, 2), "lesson-completed", 1, 1),
        (date(2026, 3, 2), "quiz-submitted", 3, 3),
        (date(2026, 3, 9), "quiz-submitted", 2, 2),  # Dave 03-11, Bob Sunday 03-15
        (date(2026, 3, 16), "quiz-submitted", 1, 1),
        (date(2026, 3, 23), "lesson-completed", 2, 1),  # Sunday 03-29
    ]
    months, _, _ = await run("learning-activity", {"dateRange": MARCH, "granularity": "month"})
    assert months == [
        (date(2026, 3, 1), "lesson-completed", 3, 2),
        (date(2026, 3, 1), "quiz-submitted", 6, 4),
    ]


async def test_learning_activity_in_berlin_across_month_start_and_dst(data: Dataset) -> None:
    # Berlin's March starts 02-28 23:00Z: v8 (02-28 23:30Z) is 1 March local.
    months, stored, _ = await run(
        "learning-activity",
        {"dateRange": MARCH, "granularity": "month", "timezone": "Europe/Berlin"},
    )
    assert stored["dateRange"]["end"] == "2026-03-31T22:00:00Z"
    assert months == [
        (date(2026, 3, 1), "lesson-completed", 3, 2),
        (date(2026, 3, 1), "lesson-started", 1, 1),
        (date(2026, 3, 1), "quiz-submitted", 6, 4),
    ]
    # 29 March (23 hours): 00:30Z is 01:30 CET, 01:30Z is 03:30 CEST; both the 29th.
    dst_day = {"preset": "custom", "from": "2026-03-29", "to": "2026-03-29"}
    rows, _, _ = await run("learning-activity", {"dateRange": dst_day, "timezone": "Europe/Berlin"})
    assert rows == [(date(2026, 3, 29), "lesson-completed", 2, 1)]


async def test_learning_activity_local_day_differs_from_utc(data: Dataset) -> None:
    days = {"preset": "custom", "from": "2026-03-07", "to": "2026-03-08"}
    params = {"dateRange": days, "eventTypes": ["quiz-submitted"]}
    utc_rows, _, _ = await run("learning-activity", params)
    assert utc_rows == [(date(2026, 3, 7), "quiz-submitted", 1, 1)]  # v5 at 03-07 23:30Z
    tokyo, _, _ = await run("learning-activity", {**params, "timezone": "Asia/Tokyo"})
    assert tokyo == [(date(2026, 3, 8), "quiz-submitted", 1, 1)]  # 03-08 08:30 JST
    ny, _, _ = await run("learning-activity", {**params, "timezone": "America/New_York"})
    assert ny == [(date(2026, 3, 7), "quiz-submitted", 1, 1)]  # 18:30 EST


async def test_learning_activity_scope(data: Dataset) -> None:
    instructor = DataScope(course_ids=frozenset({data.id(data.py)}))
    rows, _, _ = await run(
        "learning-activity", {"dateRange": MARCH, "granularity": "month"}, instructor
    )
    # v5, v6, v7 (Carol, on e6) and v9 (Alice, on e2) are Python events.
    assert rows == [
        (date(2026, 3, 1), "lesson-completed", 2, 1),
        (date(2026, 3, 1), "quiz-submitted", 2, 2),
    ]


# --- assessment-results ------------------------------------------------------------------------


async def test_assessment_results_detail(data: Dataset) -> None:
    rows, _, figures = await run("assessment-results", {"dateRange": MARCH})
    assert cols(
        "assessment-results",
        rows,
        "learnerName",
        "courseCode",
        "quizId",
        "score",
        "passed",
        "submittedAt",
    ) == [
        ("alice Adams", "SEC101", "q-sec-1", 90.0, True, dt(2026, 3, 5, 8)),
        ("Bob Brown", "SEC101", "q-sec-1", 65.0, False, dt(2026, 3, 6, 9)),
        ("Carol Chen", "PY201", "q-py-1", 70.0, False, dt(2026, 3, 7, 23, 30)),  # pass mark 80
        ("Dave Diaz", "SEC101", "q-sec-1", None, None, dt(2026, 3, 11, 10)),  # no score
        ("Bob Brown", "SEC101", "q-sec-1", 75.0, True, dt(2026, 3, 15, 9)),
        ("alice Adams", "PY201", "q-py-1", 85.0, True, dt(2026, 3, 20, 10)),
    ]
    assert rows[0][:5] == (
        "alice Adams",
        "alice@example.test",
        "Engineering",
        "SEC101",
        "Security Basics",
    )
    # 3 passed of 5 judged (Dave's has no score); (90 + 65 + 70 + 75 + 85) / 5 = 77.0.
    assert figures == [
        ("Submissions", "6"),
        ("Judged", "5"),
        ("Passed", "3"),
        ("Pass rate", "60.0%"),
        ("Average score", "77.0"),
    ]
    passed, _, _ = await run("assessment-results", {"dateRange": MARCH, "result": "passed"})
    assert [r[8] for r in passed] == [dt(2026, 3, 5, 8), dt(2026, 3, 15, 9), dt(2026, 3, 20, 10)]
    failed, _, _ = await run("assessment-results", {"dateRange": MARCH, "result": "failed"})
    assert [(r[0], r[6]) for r in failed] == [("Bob Brown", 65.0), ("Carol Chen", 70.0)]


async def test_assessment_results_by_course(data: Dataset) -> None:
    rows, stored, figures = await run(
        "assessment-results", {"dateRange": MARCH, "groupBy": "course"}
    )
    assert [c.key for c in get_report_type("assessment-results").columns_for(stored)][:3] == [
        "courseCode",
        "courseTitle",
        "attempts",
    ]
    assert rows == [
        # v5 (70, failed), v9 (85, passed).
        ("PY201", "Python", 2, 2, 50.0, 77.5, 70.0, 85.0),
        # v2 90, v3 65, v4 75 and v10 unscored: 2 of 3 scored passed; (90 + 65 + 75) / 3.
        ("SEC101", "Security Basics", 4, 3, 66.7, 76.7, 65.0, 90.0),
    ]
    assert figures == [
        ("Courses", "2"),
        ("Attempts", "6"),
        ("Lowest score", "65.0"),
        ("Highest score", "90.0"),
    ]
    instructor = DataScope(course_ids=frozenset({data.id(data.py)}))
    mine, _, _ = await run(
        "assessment-results",
        {"dateRange": MARCH, "groupBy": "course", "result": "failed"},
        instructor,
    )
    assert mine == [("PY201", "Python", 1, 1, 0.0, 70.0, 70.0, 70.0)]
    # Only an unscored submission: attempts counted, every average / rate / extreme empty.
    one_day = {"preset": "custom", "from": "2026-03-11", "to": "2026-03-11"}
    unscored, _, _ = await run("assessment-results", {"dateRange": one_day, "groupBy": "course"})
    assert unscored == [("SEC101", "Security Basics", 1, 1, None, None, None, None)]


# --- compliance-status -------------------------------------------------------------------------


async def test_compliance_status(data: Dataset) -> None:
    rows, stored, figures = await run("compliance-status", {"asOfDate": "2026-03-20"})
    assert stored["asOfDate"] == "2026-03-20"
    assert cols(
        "compliance-status", rows, "learnerName", "courseCode", "status", "complianceState"
    ) == [
        ("alice Adams", "SEC101", "completed", "compliant"),  # done 03-05, due 03-10
        ("Bob Brown", "SEC101", "completed", "completed-late"),  # done 03-16, due 03-12
        ("Carol Chen", "SEC101", "enrolled", "due-soon"),  # due 04-05, within 30 days
        ("Dave Diaz", "NEG301", "failed", "overdue"),  # due 03-01
        ("Dave Diaz", "SEC101", "enrolled", "not-due"),  # no due date
    ]  # PY201 is not mandatory; e9 was enrolled after the as-of date.
    assert rows[1][5:8] == (dt(2026, 3, 12), "completed", dt(2026, 3, 16, 8))
    assert figures[0] == ("Enrollments", "5")
    # Spec §5.2: compliant ÷ (compliant + completed late + overdue) = 1 ÷ 3; the due-soon and
    # not-due enrollments are not judged yet.
    assert figures[1:] == [
        ("Compliant", "1"),
        ("Completed late", "1"),
        ("Overdue", "1"),
        ("Due soon", "1"),
        ("Not due", "1"),
        ("Compliance rate", "33.3%"),
    ]


async def test_compliance_status_as_of_an_earlier_day(data: Dataset) -> None:
    rows, _, _ = await run("compliance-status", {"asOfDate": "2026-03-10"})
    assert cols("compliance-status", rows, "learnerName", "courseCode", "complianceState") == [
        ("alice Adams", "SEC101", "compliant"),
        ("Bob Brown", "SEC101", "due-soon"),  # not completed yet on 03-10, due 03-12
        ("Carol Chen", "SEC101", "due-soon"),
        ("Dave Diaz", "NEG301", "overdue"),
        ("Dave Diaz", "SEC101", "not-due"),  # enrolled 03-10 00:00, counts on the day itself
    ]


async def test_compliance_status_options_and_default_as_of(data: Dataset) -> None:
    short, _, _ = await run("compliance-status", {"asOfDate": "2026-03-20", "dueWithinDays": 5})
    assert ("Carol Chen", "not-due") in cols(
        "compliance-status", short, "learnerName", "complianceState"
    )
    overdue, _, _ = await run(
        "compliance-status", {"asOfDate": "2026-03-20", "states": ["overdue"]}
    )
    assert cols("compliance-status", overdue, "learnerName", "courseCode") == [
        ("Dave Diaz", "NEG301")
    ]
    # Default as-of date: today in the report's timezone at request time. At 2026-03-20 12:00Z
    # it is already 21 March in Tokyo.
    _, stored, _ = await run(
        "compliance-status", {"timezone": "Asia/Tokyo"}, now=dt(2026, 3, 20, 16)
    )
    assert stored["asOfDate"] == "2026-03-21"
    assert stored["asOf"]["dayStart"] == "2026-03-20T15:00:00Z"
    manager = DataScope(department_ids=frozenset({data.id(data.sales)}))
    rows, _, _ = await run("compliance-status", {"asOfDate": "2026-03-20"}, manager)
    assert {r[2] for r in rows} == {"Sales"}
    only_neg, _, _ = await run(
        "compliance-status",
        {"asOfDate": "2026-03-20", "courseIds": [data.id(data.neg), data.id(data.py)]},
    )
    assert [r[3] for r in only_neg] == ["NEG301"]


async def test_describe_resolved_parameters(data: Dataset) -> None:
    definition = get_report_type("learner-progress")
    resolved = definition.resolve(
        {
            "dateRange": {"preset": "last-7-days"},
            "timezone": "Europe/Berlin",
            "statuses": ["enrolled"],
        },
        ADMIN,
        NOW,
    )
    pairs = dict(definition.describe(resolved.parameters))
    assert pairs["Date range"] == "2026-03-14 – 2026-03-20 (Last 7 days)"
    assert "Timezone" not in pairs  # each file states the timezone itself, once
    assert pairs["Departments"] == "All in scope"
    assert pairs["Statuses"] == "Enrolled"  # the lookup label, not the code
    assert pairs["Date field"] == "Enrolled"
    assert pairs["Overdue only"] == "No"


async def test_describe_for_people_names_what_the_ids_stand_for(data: Dataset) -> None:
    definition = get_report_type("learner-progress")
    ids = {"departmentIds": [data.id(data.plat)], "courseIds": [data.id(data.py)]}
    bob = DataScope(user_id=data.id(data.bob))
    resolved = definition.resolve({"dateRange": MARCH, **ids}, ADMIN, NOW)
    pairs = dict(await definition.describe_for_people(resolved.parameters, bob))
    assert pairs["Departments"] == "Platform"
    assert pairs["Include sub-departments"] == "Yes"
    assert pairs["Courses"] == "Python (PY201)"
    assert pairs["Learner"] == "Bob Brown"  # a learner's own report says whose it is
    stored = dict(definition.describe(resolved.parameters))  # the stored form keeps the ids
    assert stored["Departments"] == data.id(data.plat) and "Learner" not in stored
