"""The learning-event backfill: fills the denormalized ids, rewrites legacy type spellings,
resumes after being killed and counts every event exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from app.learning_events.backfill import CHECKPOINT_COLLECTION, CHECKPOINT_ID, run_backfill
from app.learning_events.models import LearningEvent
from tests import factories as f
from tests.helpers.polling import wait_until
from tests.helpers.settings import SESSION_SETTINGS, settings_env

ROOT = Path(__file__).resolve().parents[1]
FILLERS = 40


@pytest.fixture
async def legacy(resources: Any) -> dict[str, Any]:
    """Events as an older version stored them: legacy spellings, ids missing, some broken."""
    dept = await f.department("Sales")
    ada = await f.user("Ada", dept=dept)
    nodept = await f.user("Nob")
    c1 = await f.course("C1")
    c2 = await f.course("C2")
    e1 = await f.enrollment(ada, c1, enrolled_at=f.dt(2025, 1, 1))
    e2 = await f.enrollment(nodept, c1, enrolled_at=f.dt(2025, 1, 1))
    at = f.dt(2025, 2, 1)

    def ev(type: str, user: Any, **fields: Any) -> dict[str, Any]:
        return {"type": type, "user_id": user, "occurred_at": at, "payload": {}, **fields}

    ok = ev("course-started", ada.id, course_id=c1.id, department_id=dept.id, enrollment_id=e1.id)
    docs = [
        ok,
        ev("COURSE_COMPLETED", ada.id, course_id=c1.id),
        ev("courseCompleted", ada.id, payload={"courseId": str(c1.id), "durationSeconds": 60}),
        ev("course_completed", ada.id, enrollment_id=e1.id, course_id=None, department_id=None),
        ev("lesson-completed", ada.id, course_id=c2.id),  # no enrollment in C2
        ev("lesson-completed", ObjectId(), course_id=c1.id),  # unknown user
        ev("video_watched", ada.id, course_id=c1.id),  # unknown type
        ev("quiz-started", ada.id),  # nothing says which course
        ev("quiz-started", nodept.id, course_id=c1.id),  # user without a department
    ]
    docs += [ev("QUIZ_PASSED", ada.id, payload={"courseId": str(c1.id)}) for _ in range(FILLERS)]
    for doc in docs:
        doc["_id"] = ObjectId()
    await LearningEvent.get_pymongo_collection().insert_many(docs)
    return {"dept": dept, "ada": ada, "c1": c1, "e1": e1, "e2": e2, "count": len(docs)}


EXPECTED = {"updated": 3 + FILLERS, "already_ok": 1, "unresolvable": 5}
EXPECTED_REASONS = {
    "no-enrollment": 1,
    "unknown-user": 1,
    "unknown-type": 1,
    "no-course-reference": 1,
    "user-without-department": 1,
}


async def _assert_fixed(world: dict[str, Any]) -> None:
    fixed = (
        await LearningEvent.get_pymongo_collection()
        .find({"user_id": world["ada"].id, "course_id": world["c1"].id})
        .to_list()
    )
    good = [d for d in fixed if d["type"] != "video_watched"]
    assert len(good) == 4 + FILLERS
    for doc in good:
        assert doc["type"] in {"course-started", "course-completed", "quiz-passed"}
        assert doc["department_id"] == world["dept"].id
        assert doc["enrollment_id"] == world["e1"].id
    legacy_left = await LearningEvent.get_pymongo_collection().count_documents(
        {
            "type": {
                "$in": ["COURSE_COMPLETED", "courseCompleted", "course_completed", "QUIZ_PASSED"]
            }
        }
    )
    assert legacy_left == 0


def _check_totals(summary: Any, count: int) -> None:
    assert summary.scanned == count
    assert (summary.updated, summary.already_ok, summary.unresolvable) == (
        EXPECTED["updated"],
        EXPECTED["already_ok"],
        EXPECTED["unresolvable"],
    )
    assert dict(summary.reasons) == EXPECTED_REASONS
    assert summary.partially_updated == 4
    assert summary.adds_up


async def test_dry_run_writes_nothing(legacy: dict[str, Any]) -> None:
    before = await LearningEvent.get_pymongo_collection().find().sort("_id").to_list()
    result = await run_backfill(batch_size=7, dry_run=True)
    _check_totals(result.run, legacy["count"])
    assert await LearningEvent.get_pymongo_collection().find().sort("_id").to_list() == before
    db = LearningEvent.get_pymongo_collection().database
    assert await db[CHECKPOINT_COLLECTION].count_documents({}) == 0


async def test_backfill_fills_ids_and_rerun_changes_nothing(legacy: dict[str, Any]) -> None:
    result = await run_backfill(batch_size=8)
    assert result.finished
    _check_totals(result.run, legacy["count"])
    _check_totals(result.total, legacy["count"])
    await _assert_fixed(legacy)
    nodept = await LearningEvent.get_pymongo_collection().find_one(
        {"enrollment_id": legacy["e2"].id}
    )
    assert (
        nodept is not None
        and nodept.get("department_id") is None
        and nodept["course_id"] is not None
    )

    again = await run_backfill(batch_size=8)  # resumes after the end: nothing new
    assert again.run.scanned == 0
    rescan = await run_backfill(batch_size=8, restart=True)
    assert (rescan.run.updated, rescan.run.already_ok, rescan.run.unresolvable) == (
        0,
        1 + EXPECTED["updated"],
        5,
    )


def _script(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scripts.backfill_events", "--no-progress", *args],
        cwd=ROOT,
        env=settings_env(SESSION_SETTINGS),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_crash_between_write_and_checkpoint_is_counted_once(legacy: dict[str, Any]) -> None:
    proc = _script("--batch-size", "5", "--simulate-crash-after", "2")
    _out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 137, err
    db = LearningEvent.get_pymongo_collection().database
    checkpoint = await db[CHECKPOINT_COLLECTION].find_one({"_id": CHECKPOINT_ID})
    assert checkpoint is not None and checkpoint["pending"] is not None
    assert checkpoint["totals"]["scanned"] == 5  # batch 1 committed, batch 2 written only

    # finishes the pending batch (it counts towards the limit), then 5 more
    part = await run_backfill(batch_size=5, limit=10)
    assert not part.finished and part.run.scanned == 10
    rest = await run_backfill(batch_size=6)
    assert rest.finished and rest.run.scanned == legacy["count"] - 15
    _check_totals(rest.total, legacy["count"])
    await _assert_fixed(legacy)


async def test_sigkill_mid_run_then_resume(legacy: dict[str, Any]) -> None:
    proc = _script("--batch-size", "2", "--pause-ms", "150")
    db = LearningEvent.get_pymongo_collection().database

    async def past_three_batches() -> bool:
        checkpoint = await db[CHECKPOINT_COLLECTION].find_one({"_id": CHECKPOINT_ID})
        return bool(checkpoint and checkpoint["totals"]["scanned"] >= 6)

    await wait_until(past_three_batches, 15, "three checkpointed batches", interval=0.05)
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait, 30)
    checkpoint = await db[CHECKPOINT_COLLECTION].find_one({"_id": CHECKPOINT_ID})
    assert checkpoint is not None
    assert 6 <= checkpoint["totals"]["scanned"] < legacy["count"]

    proc = _script("--batch-size", "4")
    out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err
    assert "backfill of learning events complete" in out
    checkpoint = await db[CHECKPOINT_COLLECTION].find_one({"_id": CHECKPOINT_ID})
    assert checkpoint is not None and checkpoint["pending"] is None
    totals = checkpoint["totals"]
    assert totals["scanned"] == legacy["count"]
    assert (totals["updated"], totals["already_ok"], totals["unresolvable"]) == tuple(
        EXPECTED.values()
    )
    assert totals["reasons"] == EXPECTED_REASONS
    await _assert_fixed(legacy)


async def test_backfill_holds_payload_numbers_to_the_event_contract(resources: Any) -> None:
    """Scores and durations stored as text: what the contract accepts is coerced to the number
    it stands for; what it refuses is counted with its reason and left as it is."""
    dept = await f.department("Sales")
    ada = await f.user("Ada", dept=dept)
    c1 = await f.course("C1")
    e1 = await f.enrollment(ada, c1, enrolled_at=f.dt(2025, 1, 1))
    ids = {"course_id": c1.id, "department_id": dept.id, "enrollment_id": e1.id}
    payloads: list[dict[str, Any]] = [
        {"score": "85"},
        {"score": " 72.5", "durationSeconds": "300"},
        {"score": "n/a"},
        {"score": 90, "durationSeconds": 600},
        {"score": "nan"},
        {"durationSeconds": " 45 "},
        {"durationSeconds": "300.5"},  # no fraction of a second
        {"durationSeconds": "-5"},
        {"durationSeconds": "999999999"},  # more than a week
        {"durationSeconds": True},
    ]
    docs = [
        {
            "_id": ObjectId(),
            "type": "quiz-submitted",
            "user_id": ada.id,
            "occurred_at": f.dt(2025, 2, 1),
            "payload": {"quizId": "q1", **payload},
            **ids,
        }
        for payload in payloads
    ]
    await LearningEvent.get_pymongo_collection().insert_many(docs)
    result = await run_backfill()
    assert (result.run.updated, result.run.already_ok, result.run.unresolvable) == (3, 1, 6)
    assert dict(result.run.reasons) == {
        "invalid-payload-score": 2,
        "invalid-payload-durationSeconds": 4,
    }
    stored = {
        d["_id"]: {k: v for k, v in d["payload"].items() if k != "quizId"}
        async for d in LearningEvent.get_pymongo_collection().find({})
    }
    assert [stored[d["_id"]] for d in docs] == [
        {"score": 85},
        {"score": 72.5, "durationSeconds": 300},
        {"score": "n/a"},
        {"score": 90, "durationSeconds": 600},
        {"score": "nan"},
        {"durationSeconds": 45},
        {"durationSeconds": "300.5"},
        {"durationSeconds": "-5"},
        {"durationSeconds": "999999999"},
        {"durationSeconds": True},
    ]
    assert isinstance(stored[docs[1]["_id"]]["durationSeconds"], int)
    again = await run_backfill(restart=True)
    assert again.run.updated == 0 and again.run.unresolvable == 6
