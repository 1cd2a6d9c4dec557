"""The demo data generator: deterministic for a seed and internally consistent."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.learning_events.models import LearningEvent
from app.platform.models import Course, Department, Enrollment, User
from app.security import decode_token
from scripts.demo_data import DEMO_ACCOUNTS, generate, parse_scale, seed_demo
from scripts.mint_token import demo_tokens
from tests.helpers.settings import settings_env

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


def _materialize(scale: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    data = generate(scale, seed, NOW)
    enrollments: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for e, v in data.stream(97):
        enrollments += e
        events += v
    return {"departments": data.departments, "users": data.users, "courses": data.courses,
            "enrollments": enrollments, "events": events}  # fmt: skip


def test_same_seed_same_data_and_another_seed_differs() -> None:
    a, b, c = _materialize(200, 7), _materialize(200, 7), _materialize(200, 8)
    assert a == b
    assert a["enrollments"] != c["enrollments"]
    assert len(a["enrollments"]) == 200


def test_scale_names() -> None:
    assert parse_scale("small") == 1_000 and parse_scale("large") == 1_000_000
    assert parse_scale("250k") == 250_000 and parse_scale("1200") == 1200
    with pytest.raises(ValueError):
        parse_scale("huge")


def test_generated_data_is_internally_consistent() -> None:
    data = _materialize(400, 42)
    users = {u["_id"]: u for u in data["users"]}
    courses = {c["_id"]: c for c in data["courses"]}
    departments = {d["_id"]: d for d in data["departments"]}
    by_enrollment: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ev in data["events"]:
        by_enrollment[ev["enrollment_id"]].append(ev)
    assert len({u["email"] for u in data["users"]}) == len(data["users"])
    assert len({(e["user_id"], e["course_id"]) for e in data["enrollments"]}) == 400
    assert set(Counter(e["status"] for e in data["enrollments"])) == {
        "enrolled", "in-progress", "completed", "failed", "withdrawn",
    }  # fmt: skip
    assert any(e["due_at"] and e["due_at"] < NOW and e["status"] not in ("completed", "withdrawn")
               for e in data["enrollments"])  # fmt: skip
    for enr in data["enrollments"]:
        evs = by_enrollment[enr["_id"]]
        types = [ev["type"] for ev in evs]
        course = courses[enr["course_id"]]
        user = users[enr["user_id"]]
        assert enr["department_id"] == user["department_id"] in departments
        assert types[0] == "course-enrolled" and types.count("course-enrolled") == 1
        assert evs[0]["occurred_at"] == enr["enrolled_at"]
        assert ("course-completed" in types) == (enr["status"] == "completed")
        assert ("certificate-issued" in types) == (enr["status"] == "completed")
        assert ("course-started" in types) == (enr["status"] != "enrolled")
        assert all(ev["occurred_at"] <= NOW for ev in evs)
        assert [ev["occurred_at"] for ev in evs] == sorted(ev["occurred_at"] for ev in evs)
        assert enr["last_activity_at"] == evs[-1]["occurred_at"]
        seconds = sum(ev["payload"].get("durationSeconds", 0) for ev in evs)
        assert enr["time_spent_minutes"] == round(seconds / 60)
        for ev in evs:
            assert (ev["course_id"], ev["department_id"], ev["user_id"]) == (
                enr["course_id"], enr["department_id"], enr["user_id"],
            )  # fmt: skip
        for i, ev in enumerate(evs):
            if ev["type"] == "quiz-submitted":
                assert ev["payload"]["quizId"] and 0 <= ev["payload"]["score"] <= 100
                verdict = evs[i + 1]
                passed = ev["payload"]["score"] >= course["passing_score"]
                assert verdict["type"] == ("quiz-passed" if passed else "quiz-failed")
        if enr["status"] == "completed":
            assert enr["completed_at"] is not None and enr["score"] >= course["passing_score"]
            assert enr["progress_percent"] == 100.0
        else:
            assert enr["completed_at"] is None
        if enr["status"] == "failed":
            assert enr["score"] < course["passing_score"]
        if enr["started_at"]:
            assert enr["enrolled_at"] <= enr["started_at"]


async def test_seed_creates_demo_accounts_and_if_empty_keeps_it(
    resources: Any, settings: Any
) -> None:
    large = (Enrollment.get_pymongo_collection(), LearningEvent.get_pymongo_collection())
    indexes = [await c.index_information() for c in large]
    assert all(len(i) > 3 for i in indexes)
    report = await seed_demo(120, 3, now=NOW)
    # Loaded without their secondary indexes, which are built again after the load, the same.
    assert [await c.index_information() for c in large] == indexes
    assert report.counts["enrollments"] == 120 == await Enrollment.count()
    assert report.counts["learning_events"] == await LearningEvent.count() > 120
    assert report.rows_per_second > 0 and report.peak_rss_mb > 0

    accounts = {
        role: await User.find_one({"email": email}) for role, email in DEMO_ACCOUNTS.items()
    }
    assert all(accounts.values())
    admin, manager, instructor, learner = (
        accounts[r] for r in ("admin", "manager", "instructor", "learner")
    )
    assert admin and admin.roles == ["admin"]
    assert manager and manager.roles == ["manager"]
    assert await Department.find({"ancestor_ids": manager.department_id}).count() >= 2
    assert instructor and await Course.find({"instructor_ids": instructor.id}).count() >= 3
    assert learner and learner.roles == ["learner"]
    statuses = {e.status for e in await Enrollment.find({"user_id": learner.id}).to_list()}
    assert {"completed", "in-progress", "enrolled"} <= statuses
    missing = await LearningEvent.find(
        {"$or": [{"course_id": None}, {"department_id": None}, {"enrollment_id": None}]}
    ).count()
    assert missing == 0

    lines = await demo_tokens(settings, 600)
    assert [line.split()[0] for line in lines] == ["admin", "manager", "instructor", "learner"]
    claims = {line.split()[0]: decode_token(line.split()[-1], settings) for line in lines}
    assert claims["manager"]["departmentIds"] == [str(manager.department_id)]
    assert claims["learner"]["sub"] == str(learner.id) and claims["admin"]["roles"] == ["admin"]

    # The script (as `make run` calls it) leaves existing data alone.
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "scripts.seed_demo", "--if-empty", "--no-progress"],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert await Enrollment.count() == 120
