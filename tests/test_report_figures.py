"""Figures that outside testing found wrong: averages landing halfway, pass rates nothing can be
judged by, legacy string scores, totals of rounded values, ties named by one unstated rule; how
people read the rows (labels, Yes / No, a continued subtree's path); and department trees in
every report type."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import ObjectId
from pypdf import PdfReader

from app.learning_events.models import LearningEvent
from app.platform.models import Course
from app.reports.rendering import RenderContext, render_pdf
from app.reports.rendering.present import Presentation, TreeName
from app.reports.types import LabelledCode, column
from app.runtime.resources import Resources
from app.security import DataScope
from tests import factories as f
from tests.reports_fixture import NOW, build_dataset
from tests.test_report_types import run

DAY = {"preset": "custom", "from": "2025-01-15", "to": "2025-01-15"}
JANUARY = {"preset": "custom", "from": "2025-01-01", "to": "2025-01-31"}


async def _quiz(learner: Any, enr: Any, score: Any, hour: int = 10) -> None:
    await f.event(
        "quiz-submitted",
        learner,
        occurred_at=f.dt(2025, 1, 15, hour),
        enr=enr,
        payload={"quizId": "q1", "score": score},
    )


async def test_averages_that_land_halfway_round_up(resources: Resources) -> None:
    dept = await f.department("Sales")
    ada, bob = await f.user("Ada", dept=dept), await f.user("Bob", dept=dept)
    crs = await f.course("Q1", passing_score=60.35)
    # Each completed half a day after enrolling, scoring 60.3 and 60.4 (a mean of 60.35).
    e1, e2 = [
        await f.enrollment(
            who,
            crs,
            enrolled_at=f.dt(2025, 1, 2),
            status="completed",
            score=score,
            completed_at=f.dt(2025, 1, 2, 12),
        )
        for who, score in ((ada, 60.3), (bob, 60.4))
    ]
    await _quiz(ada, e1, 60.3)
    await _quiz(bob, e2, 60.4, hour=11)

    params = {"dateRange": DAY, "timezone": "UTC", "groupBy": "course"}
    rows, _, _ = await run("assessment-results", params)
    assert rows == [("Q1", crs.title, 2, 2, 50.0, 60.4, 60.3, 60.4)]
    _, _, figures = await run("assessment-results", {"dateRange": DAY})
    assert ("Average score", "60.4") in figures

    rows, _, _ = await run("course-completion", {"dateRange": JANUARY})
    # 0.5 days each: an average of exactly 0.5 days, and scores averaging 60.35.
    assert rows[0][-2:] == (60.4, 0.5)
    rows, _, _ = await run("department-summary", {"dateRange": JANUARY})
    assert [r[7] for r in rows] == [60.4]


async def test_pass_rate_is_empty_when_nothing_can_be_judged(resources: Resources) -> None:
    dept = await f.department("Sales")
    ada = await f.user("Ada", dept=dept)
    crs = await f.course("NP")
    await Course.get_pymongo_collection().update_one(
        {"_id": crs.id}, {"$set": {"passing_score": None}}
    )
    enr = await f.enrollment(ada, crs, enrolled_at=f.dt(2025, 1, 2))
    await _quiz(ada, enr, 80)

    rows, _, _ = await run("assessment-results", {"dateRange": DAY, "groupBy": "course"})
    assert rows == [("NP", crs.title, 1, 1, None, 80.0, 80.0, 80.0)]
    _, _, figures = await run("assessment-results", {"dateRange": DAY})
    assert ("Pass rate", "—") in figures


async def test_submissions_that_cannot_be_judged_pass_no_result_filter(
    resources: Resources,
) -> None:
    """A course without a passing score (null or absent), and a course that no longer exists:
    the detail rows' `passed` is empty and neither `result` filter keeps them; grouped, they
    count as attempts that were not judged. A passing score stored as an integer judges as a
    float one does."""
    dept = await f.department("Sales")
    ada = await f.user("Ada", dept=dept)
    judged = await f.course("JD", passing_score=70)
    no_score = await f.course("NS")
    unset = await f.course("US")
    made = (judged, no_score, unset)
    courses = Course.get_pymongo_collection()
    await courses.update_one({"_id": judged.id}, {"$set": {"passing_score": 70}})  # an int
    await courses.update_one({"_id": no_score.id}, {"$set": {"passing_score": None}})
    await courses.update_one({"_id": unset.id}, {"$unset": {"passing_score": ""}})
    enr = {c.id: await f.enrollment(ada, c, enrolled_at=f.dt(2025, 1, 2)) for c in made}
    for hour, crs, score in (
        (9, judged, 70),
        (10, judged, 69.5),
        (11, no_score, 90),
        (12, unset, 10),
    ):
        await _quiz(ada, enr[crs.id], score, hour=hour)
    await LearningEvent.get_pymongo_collection().insert_one(
        {
            "type": "quiz-submitted",
            "user_id": ada.id,
            "course_id": ObjectId(),  # a course since deleted
            "department_id": dept.id,
            "occurred_at": f.dt(2025, 1, 15, 13),
            "payload": {"quizId": "q9", "score": 100},
        }
    )

    rows, _, figures = await run("assessment-results", {"dateRange": DAY})
    assert [(r[3], r[6], r[7]) for r in rows] == [
        ("JD", 70.0, True),
        ("JD", 69.5, False),
        ("NS", 90.0, None),
        ("US", 10.0, None),
        (None, 100.0, None),
    ]
    assert ("Pass rate", "50.0%") in figures
    passed, _, _ = await run("assessment-results", {"dateRange": DAY, "result": "passed"})
    assert [(r[3], r[6]) for r in passed] == [("JD", 70.0)]
    failed, _, _ = await run("assessment-results", {"dateRange": DAY, "result": "failed"})
    assert [(r[3], r[6]) for r in failed] == [("JD", 69.5)]

    grouped, _, _ = await run("assessment-results", {"dateRange": DAY, "groupBy": "course"})
    assert grouped == [
        (None, None, 1, 1, None, 100.0, 100.0, 100.0),  # no course: sorts first
        ("JD", judged.title, 2, 1, 50.0, 69.8, 69.5, 70.0),
        ("NS", no_score.title, 1, 1, None, 90.0, 90.0, 90.0),
        ("US", unset.title, 1, 1, None, 10.0, 10.0, 10.0),
    ]
    params = {"dateRange": DAY, "groupBy": "course", "result": "failed"}
    grouped_failed, _, _ = await run("assessment-results", params)
    assert grouped_failed == [("JD", judged.title, 1, 1, 0.0, 69.5, 69.5, 69.5)]
    mine = DataScope(course_ids=frozenset({str(no_score.id), str(judged.id)}))
    scoped, _, _ = await run("assessment-results", {"dateRange": DAY, "groupBy": "course"}, mine)
    assert [r[0] for r in scoped] == ["JD", "NS"]


async def test_non_numeric_scores_are_left_out_of_min_max_average(resources: Resources) -> None:
    dept = await f.department("Sales")
    ada = await f.user("Ada", dept=dept)
    crs = await f.course("LG", passing_score=70)
    enr = await f.enrollment(ada, crs, enrolled_at=f.dt(2025, 1, 2))
    await _quiz(ada, enr, 60)
    await _quiz(ada, enr, 90, hour=11)
    await _quiz(ada, enr, "85", hour=12)  # legacy: stored as a string

    rows, _, _ = await run("assessment-results", {"dateRange": DAY, "groupBy": "course"})
    assert rows == [("LG", crs.title, 3, 1, 50.0, 75.0, 60.0, 90.0)]
    assert await LearningEvent.find_all().count() == 3


async def test_a_department_filter_covers_its_subtree_in_every_type(resources: Resources) -> None:
    data = await build_dataset()
    eng = [data.id(data.eng)]
    march = {"preset": "custom", "from": "2026-03-01", "to": "2026-03-31"}
    expected = {
        # type: (rows with the subtree, rows for Engineering's own data only)
        "learner-progress": (7, 4),  # e1-e4, and Platform's e5, e6, e9
        "course-completion": (3, 2),  # SEC101, PY201, and NEG301 through Platform's e9
        "learning-activity": (7, 5),  # (day, event type) pairs
        "assessment-results": (5, 4),
        "compliance-status": (3, 2),
    }
    for key, (with_subtree, own) in expected.items():
        params: dict[str, Any] = {"departmentIds": eng}
        if key != "compliance-status":
            params["dateRange"] = march
        rows, stored, _ = await run(key, params, now=NOW)
        assert stored["includeSubDepartments"] is True
        got = [len(rows)]
        rows, _, _ = await run(key, {**params, "includeSubDepartments": False}, now=NOW)
        got.append(len(rows))
        assert tuple(got) == (with_subtree, own), key


async def test_learning_hours_are_summed_unrounded_and_rounded_once(resources: Resources) -> None:
    """Three departments with 150 s each: every row shows 0.0 hours, the total 450 s is 0.1."""
    for name in ("Alpha", "Beta", "Gamma"):
        dept = await f.department(name)
        who = await f.user(f"{name} Learner", dept=dept)
        enr = await f.enrollment(who, await f.course(), enrolled_at=f.dt(2025, 1, 2))
        await f.event(
            "lesson-completed",
            who,
            occurred_at=f.dt(2025, 1, 3),
            enr=enr,
            payload={"durationSeconds": 150},
        )
    for tree in (True, False):
        params = {"dateRange": JANUARY, "includeSubDepartments": tree}
        rows, _, figures = await run("department-summary", params)
        assert [r[9] for r in rows] == [0.0, 0.0, 0.0]
        assert ("Learning hours", "0.1") in figures


async def test_a_tie_for_the_most_frequent_event_type_names_every_tied_type(
    resources: Resources,
) -> None:
    dept = await f.department("Sales")
    ada = await f.user("Ada", dept=dept)
    enr = await f.enrollment(ada, await f.course(), enrolled_at=f.dt(2025, 1, 2))
    for hour, kind in enumerate(
        ["quiz-submitted", "lesson-completed", "quiz-submitted", "lesson-completed", "quiz-started"]
    ):
        await f.event(kind, ada, occurred_at=f.dt(2025, 1, 15, 8 + hour), enr=enr)
    _, _, figures = await run("learning-activity", {"dateRange": JANUARY})
    # Labels, not codes; every tied type, ordered by label.
    assert ("Most frequent event type", "Lesson completed, Quiz submitted (2 each)") in figures
    _, _, alone = await run(
        "learning-activity", {"dateRange": JANUARY, "eventTypes": ["quiz-submitted"]}
    )
    assert ("Most frequent event type", "Quiz submitted (2)") in alone


def test_people_read_labels_yes_no_and_the_tree_path() -> None:
    columns = [
        column("name", "Name", "string"),
        column("quiz", "Quiz", "string", labelled=True),
        column("passed", "Passed", "boolean"),
        column("state", "State", "string", lookup="compliance-state"),
        column("level", "Level", "integer", csv_only=True),
    ]
    labels = {"compliance-state": {"due-soon": "Due soon"}}
    raw = [
        ("Sales", LabelledCode("q-1", "Final quiz"), True, "due-soon", 0),
        ("EMEA", "q-2", False, "due-soon", 1),
        ("Berlin", None, None, None, 2),
        ("APAC", None, None, None, 1),
    ]
    people = Presentation.of(columns, labels, for_people=True).rows(raw)
    assert [r[1:] for r in people] == [
        ("Final quiz", "Yes", "Due soon"),
        ("q-2", "No", "Due soon"),  # a quiz the course does not name keeps its id
        (None, None, None),
        (None, None, None),
    ]
    names = [r[0] for r in people]
    assert all(isinstance(n, TreeName) for n in names)
    assert [n.path for n in names if isinstance(n, TreeName)] == [
        (),
        ("Sales",),
        ("Sales", "EMEA"),
        ("Sales",),
    ]
    machines = Presentation.of(columns, labels, for_people=False).rows(raw)
    assert machines[0] == ("Sales", "q-1", True, "due-soon", 0)


async def test_a_continued_subtree_names_its_path_on_the_next_page(tmp_path: Path) -> None:
    columns = [column("name", "Department", "string"), column("level", "Level", "integer")]
    raw = [("Sales", 0)] + [(f"Team {i}", 1) for i in range(120)]
    presentation = Presentation.of(columns, {}, for_people=True)
    rows = presentation.rows(raw)
    context = RenderContext(
        title="Department summary",
        report_type="department-summary",
        format="pdf",
        timezone="UTC",
        generated_at=datetime(2026, 3, 20, 12, tzinfo=UTC),
    )
    path = tmp_path / "tree.pdf"
    pages = await render_pdf(path, presentation.columns, rows, context, chunk_rows=200, processes=1)
    assert pages >= 2
    reader = PdfReader(path)
    assert "(continued)" not in reader.pages[0].extract_text()
    for page in reader.pages[1:]:
        assert "Sales (continued)" in page.extract_text()
