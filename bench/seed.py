"""Seeds the bench database with only what the figures need, with raw `insert_many`.

The data is deterministic and indexed by position, so a larger scale extends what is there:
enrollment `i` always has the same ids and values. `bench_meta` holds one marker document per
collection with how many documents are seeded; a re-run inserts only the missing ones.

Enrollments are enrolled at 1,000 per day from BASE_DAY on, so a custom date range of
`ceil(n / 1000)` days starting at BASE_DAY selects exactly the first `n` rows (`report_range`).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError

ROWS_PER_DAY = 1000
BASE_DAY = date(2023, 1, 2)
BASE = datetime(BASE_DAY.year, BASE_DAY.month, BASE_DAY.day, tzinfo=UTC)
COURSES_PER_USER = 20
N_COURSES = 40
STATUSES = (
    "enrolled",
    "in-progress",
    "in-progress",
    "completed",
    "completed",
    "failed",
    "withdrawn",
)
EVENT_TYPES = ("course-started", "lesson-started", "lesson-completed", "quiz-submitted")
FIRST = ("Ada", "Björn", "Chiara", "Dmitri", "Eve", "Farah", "Günther", "Hana", "Ivo", "Jun",
         "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq")  # fmt: skip
LAST = ("Andersen", "Barros", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Haddad",
        "Ito", "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov")  # fmt: skip
DEPARTMENTS = ("Engineering", "Platform", "Product", "Data", "Security", "Sales EMEA",
               "Sales Americas", "Support", "Onboarding", "Finance", "People", "Marketing")  # fmt: skip
DUPLICATE_KEY = 11000
KIND = {"department": 1, "user": 2, "course": 3, "enrollment": 4, "event": 5}


def oid(kind: str, i: int) -> ObjectId:
    return ObjectId(f"be{KIND[kind]:02x}{i:020x}")


def report_range(rows: int) -> dict[str, str]:
    """The custom date range holding exactly the first `rows` enrollments (a multiple of
    ROWS_PER_DAY; otherwise the next whole day)."""
    days = max(1, math.ceil(rows / ROWS_PER_DAY))
    last = BASE_DAY + timedelta(days=days - 1)
    return {"preset": "custom", "from": BASE_DAY.isoformat(), "to": last.isoformat()}


def _department(i: int) -> dict[str, Any]:
    return {
        "_id": oid("department", i),
        "name": DEPARTMENTS[i],
        "code": f"BENCH-{i:02d}",
        "parent_id": None,
        "ancestor_ids": [],
        "created_at": BASE,
        "updated_at": BASE,
    }


def _course(i: int) -> dict[str, Any]:
    return {
        "_id": oid("course", i),
        "code": f"C-{i:03d}",
        "title": f"Course number {i} on a realistic topic",
        "category": ("compliance", "engineering", "sales", "leadership")[i % 4],
        "department_id": oid("department", i % len(DEPARTMENTS)),
        "instructor_ids": [],
        "is_mandatory": i % 4 == 0,
        "duration_minutes": 30 + i,
        "passing_score": 70.0,
        "created_at": BASE,
        "updated_at": BASE,
    }


def _user(i: int) -> dict[str, Any]:
    return {
        "_id": oid("user", i),
        "name": f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]} {i}",
        "email": f"learner{i}@bench.example",
        "department_id": oid("department", i % len(DEPARTMENTS)),
        "roles": ["learner"],
        "status": "active",
        "created_at": BASE,
        "updated_at": BASE,
    }


def _enrollment(i: int) -> dict[str, Any]:
    user = i // COURSES_PER_USER
    course = (i % COURSES_PER_USER + user) % N_COURSES
    enrolled = BASE + timedelta(seconds=i * 86400 / ROWS_PER_DAY)
    status = STATUSES[i % len(STATUSES)]
    completed = enrolled + timedelta(days=3 + i % 20) if status == "completed" else None
    last = enrolled + timedelta(days=1 + i % 25)
    return {
        "_id": oid("enrollment", i),
        "user_id": oid("user", user),
        "course_id": oid("course", course),
        "department_id": oid("department", user % len(DEPARTMENTS)),
        "status": status,
        "enrolled_at": enrolled,
        "due_at": enrolled + timedelta(days=30),
        "started_at": enrolled + timedelta(hours=5) if status != "enrolled" else None,
        "completed_at": completed,
        "progress_percent": 100.0 if status == "completed" else float((i * 7) % 100),
        "score": float(50 + i % 50) if status in ("completed", "failed") else None,
        "time_spent_minutes": 10 + i % 300,
        "last_activity_at": completed or last,
        "created_at": enrolled,
        "updated_at": last,
    }


def _event(i: int, enrollments: int) -> dict[str, Any]:
    e = (i * 7919) % max(1, enrollments)
    enrollment = _enrollment(e)
    kind = EVENT_TYPES[i % len(EVENT_TYPES)]
    payload: dict[str, Any] = {"durationSeconds": 60 + i % 900}
    if kind == "quiz-submitted":
        payload |= {"quizId": f"q-{i % 9}", "score": float(40 + i % 60)}
    occurred = enrollment["enrolled_at"] + timedelta(hours=1 + i % 200)
    return {
        "_id": oid("event", i),
        "type": kind,
        "user_id": enrollment["user_id"],
        "occurred_at": occurred,
        "payload": payload,
        "course_id": enrollment["course_id"],
        "department_id": enrollment["department_id"],
        "enrollment_id": enrollment["_id"],
        "created_at": occurred,
        "updated_at": occurred,
    }


async def _extend(
    db: Any, name: str, want: int, make: Any, batch: int = 20_000
) -> tuple[int, float]:
    """Inserts documents [have, want) of collection `name`; returns (inserted, seconds)."""
    meta = db["bench_meta"]
    marker = await meta.find_one({"_id": name})
    have = int(marker["n"]) if marker else 0
    if have >= want:
        return 0, 0.0
    started = time.perf_counter()
    coll = db[name]
    for lo in range(have, want, batch):
        hi = min(want, lo + batch)
        try:
            await coll.insert_many([make(i) for i in range(lo, hi)], ordered=False)
        except BulkWriteError as exc:
            # A batch inserted before its marker was saved (a run stopped in between, or a
            # retried write after a lost connection) is there already: only that is tolerated.
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
        await meta.update_one({"_id": name}, {"$set": {"n": hi}}, upsert=True)
    return want - have, time.perf_counter() - started


async def seed(rows: int, events: int) -> dict[str, Any]:
    """Ensures `rows` enrollments (with their users, courses, departments) and `events` learning
    events; returns what was inserted and the measured insert rate."""
    from app.config import get_settings
    from app.db import Database
    from app.documents import DOCUMENTS
    from app.lookup_sources import provide_lookup_sources
    from app.lookups.seed import seed_lookups
    from scripts.demo_data.seed import drop_secondary_indexes

    provide_lookup_sources()
    database = Database(get_settings())
    await database.connect(DOCUMENTS)  # creates every index
    try:
        await seed_lookups()
        db = database.db
        done: dict[str, tuple[int, float]] = {}
        done["departments"] = await _extend(db, "departments", len(DEPARTMENTS), _department)
        done["courses"] = await _extend(db, "courses", N_COURSES, _course)
        users = math.ceil(rows / COURSES_PER_USER)
        done["users"] = await _extend(db, "users", users, _user)
        # An empty large collection is loaded without its secondary indexes, which are then
        # built once over all of it (as the demo generator does); an extension of a collection
        # that has data keeps them.
        deferred = {
            name: await drop_secondary_indexes(db[name])
            for name in ("enrollments", "learning_events")
            if await db[name].estimated_document_count() == 0
        }
        try:
            done["enrollments"] = await _extend(db, "enrollments", rows, _enrollment)
            done["learning_events"] = await _extend(
                db, "learning_events", events, lambda i: _event(i, rows)
            )
        finally:
            for name, models in deferred.items():
                if models:
                    t0 = time.perf_counter()
                    await db[name].create_indexes(models)
                    built = time.perf_counter() - t0
                    n, s = done.get(name, (0, 0.0))
                    done[name] = (n, s + built)
        inserted = sum(n for n, _ in done.values())
        seconds = sum(s for _, s in done.values())
        return {
            "inserted": inserted,
            "seconds": seconds,
            "docs_per_s": inserted / seconds if seconds else None,
            "detail": {k: {"inserted": n, "seconds": round(s, 1)} for k, (n, s) in done.items()},
        }
    finally:
        await database.close()


async def enrollments() -> int:
    """How many enrollments are seeded (the bench_meta marker)."""
    from app.config import get_settings
    from app.db import Database

    database = Database(get_settings())
    try:
        marker = await database.db["bench_meta"].find_one({"_id": "enrollments"})
        return int(marker["n"]) if marker else 0
    finally:
        await database.close()


async def settle_jobs() -> int:
    """Cancels report jobs an earlier phase left queued or running (P6 creates jobs faster than
    one worker runs them), so that no phase's worker starts by draining another's backlog."""
    from datetime import UTC, datetime

    from app.config import get_settings
    from app.db import Database

    settings = get_settings()
    if not settings.mongodb_db.startswith("bench"):
        raise RuntimeError(f"refusing to touch {settings.mongodb_db!r}: not a bench database")
    database = Database(settings)
    try:
        result = await database.db["report_jobs"].update_many(
            {"status": {"$in": ["queued", "running"]}},
            {"$set": {"status": "cancelled", "finished_at": datetime.now(UTC)}},
        )
        return int(result.modified_count)
    finally:
        await database.close()


async def drop() -> None:
    from app.config import get_settings
    from app.db import Database

    settings = get_settings()
    if not settings.mongodb_db.startswith("bench"):
        raise RuntimeError(f"refusing to drop {settings.mongodb_db!r}: not a bench database")
    database = Database(settings)
    try:
        await database.client.drop_database(settings.mongodb_db)
    finally:
        await database.close()
