"""Backfill of learning events stored before API-ISS-035: fills the denormalized course_id,
department_id and enrollment_id and rewrites legacy type spellings (`COURSE_COMPLETED`,
`courseCompleted`, `course_completed`) to the kebab-case code and numeric string scores
(`payload.score: "85"`) to numbers.

How it stays correct when run on a live database and killed at any moment:

- Events are read in `_id` order, one batch at a time, after the checkpoint's `last_id`
  (the checkpoint is a document in `backfill_checkpoints`).
- Every change is a conditional single-document update (`{_id, course_id: null}` ->
  `$set course_id`, `{_id, type: <legacy>}` -> `$set type`), so applying it twice is a no-op,
  nothing else in the document is touched and no lock is held beyond one document write.
- Before writing a batch, its planned changes and counts are saved in the checkpoint as
  `pending` (a small write-ahead record); after the bulk write the checkpoint moves `last_id`
  on and adds the counts. A run killed in between re-applies the pending batch (no-ops where
  already done) and commits it, so every event is counted exactly once and the summary adds up.
- Two runs at once are refused: each checkpoint write is conditional on the state it read.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from app.common.time import utcnow
from app.learning_events.models import LearningEvent
from app.learning_events.scores import numeric_string
from app.learning_events.service import COURSE_EVENT_TYPES
from app.lookups import validation
from app.lookups.validation import suggest_kebab
from app.platform.models import Course, Enrollment, User

CHECKPOINT_COLLECTION = "backfill_checkpoints"
CHECKPOINT_ID = "learning-events-denormalize-v1"
EVENT_TYPE_CATEGORY = "learning-event-type"
# Legacy events stored quiz scores as strings ("85"); reports only read numbers.
SCORE_FIELD = "payload.score"
COUNTERS = ("scanned", "updated", "already_ok", "unresolvable", "partially_updated")

Mongo = dict[str, Any]


class BackfillConflict(RuntimeError):
    """Another backfill run moved the checkpoint underneath this one."""


@dataclass
class Summary:
    scanned: int = 0
    updated: int = 0  # changed and now complete
    already_ok: int = 0  # nothing to do
    unresolvable: int = 0  # still incomplete after this run (maybe partly updated)
    partially_updated: int = 0  # of the unresolvable ones, those that got some fields
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, counts: Mongo) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + int(counts.get(name, 0)))
        self.reasons.update({k: int(v) for k, v in (counts.get("reasons") or {}).items()})

    def as_counts(self) -> Mongo:
        return {**{name: getattr(self, name) for name in COUNTERS}, "reasons": dict(self.reasons)}

    @property
    def adds_up(self) -> bool:
        return self.scanned == self.updated + self.already_ok + self.unresolvable

    def lines(self) -> list[str]:
        out = [
            f"scanned       {self.scanned:>10,}",
            f"updated       {self.updated:>10,}",
            f"already ok    {self.already_ok:>10,}",
            f"unresolvable  {self.unresolvable:>10,}"
            + (f"  ({self.partially_updated:,} partly filled)" if self.partially_updated else ""),
        ]
        out += [f"  {reason:<28}{n:>8,}" for reason, n in sorted(self.reasons.items())]
        return out


@dataclass
class BackfillResult:
    run: Summary
    total: Summary
    finished: bool
    dry_run: bool
    last_id: ObjectId | None


@dataclass
class _Plan:
    """Changes for one batch: conditional updates plus the counts they stand for."""

    changes: list[Mongo] = field(default_factory=list)  # {_id, set: {...}, type_from: str?}
    counts: Summary = field(default_factory=Summary)


def _checkpoints() -> AsyncCollection[Mongo]:
    return LearningEvent.get_pymongo_collection().database[CHECKPOINT_COLLECTION]


def _as_object_id(value: Any) -> ObjectId | None:
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str) and ObjectId.is_valid(value):
        return ObjectId(value)
    return None


async def _plan_batch(docs: list[Mongo]) -> _Plan:
    """Works out, for each event, which fields to fill and whether it can be fully fixed."""
    user_ids = {u for d in docs if (u := _as_object_id(d.get("user_id")))}
    users: dict[ObjectId, Mongo] = {
        u["_id"]: u
        async for u in User.get_pymongo_collection().find(
            {"_id": {"$in": list(user_ids)}}, {"department_id": 1}
        )
    }
    # Course candidates: stored course_id, legacy payload.courseId, or the stored enrollment's.
    enrollment_ids = {e for d in docs if (e := _as_object_id(d.get("enrollment_id")))}
    by_enrollment_id: dict[ObjectId, Mongo] = {}
    if enrollment_ids:
        by_enrollment_id = {
            e["_id"]: e
            async for e in Enrollment.get_pymongo_collection().find(
                {"_id": {"$in": list(enrollment_ids)}}, {"user_id": 1, "course_id": 1}
            )
        }

    def course_of(doc: Mongo) -> tuple[ObjectId | None, str | None]:
        if doc.get("course_id") is not None:
            return _as_object_id(doc["course_id"]), None
        legacy = (doc.get("payload") or {}).get("courseId")
        if legacy is not None:
            oid = _as_object_id(legacy)
            return (oid, None) if oid else (None, "invalid-payload-course-id")
        enrollment_id = _as_object_id(doc.get("enrollment_id"))
        if enrollment_id is not None:
            enrollment = by_enrollment_id.get(enrollment_id)
            return (enrollment["course_id"], None) if enrollment else (None, "unknown-enrollment")
        return None, "no-course-reference"

    courses_wanted = {c for d in docs if (c := course_of(d)[0])}
    known_courses: set[ObjectId] = set()
    pairs: dict[tuple[ObjectId, ObjectId], ObjectId] = {}
    if courses_wanted:
        known_courses = {
            c["_id"]
            async for c in Course.get_pymongo_collection().find(
                {"_id": {"$in": list(courses_wanted)}}, {"_id": 1}
            )
        }
        async for e in Enrollment.get_pymongo_collection().find(
            {"user_id": {"$in": list(user_ids)}, "course_id": {"$in": list(courses_wanted)}},
            {"user_id": 1, "course_id": 1},
        ):
            pairs[(e["user_id"], e["course_id"])] = e["_id"]

    plan = _Plan()
    for doc in docs:
        to_set: Mongo = {}
        problems: list[str] = []
        change: Mongo = {"_id": doc["_id"]}

        event_type = doc.get("type")
        effective_type = event_type
        if not isinstance(event_type, str) or not validation.is_valid(
            EVENT_TYPE_CATEGORY, event_type, include_inactive=True
        ):
            fixed = suggest_kebab(event_type) if isinstance(event_type, str) else None
            if fixed and validation.is_valid(EVENT_TYPE_CATEGORY, fixed, include_inactive=True):
                to_set["type"] = fixed
                change["type_from"] = event_type
                effective_type = fixed
            else:
                problems.append("unknown-type")

        user_id = _as_object_id(doc.get("user_id"))
        user = users.get(user_id) if user_id else None
        if user is None:
            problems.append("unknown-user")
        elif doc.get("department_id") is None:
            if user.get("department_id") is not None:
                to_set["department_id"] = user["department_id"]
            else:
                problems.append("user-without-department")

        course_scoped = effective_type in COURSE_EVENT_TYPES or "unknown-type" in problems
        course_id, course_problem = course_of(doc)
        if doc.get("course_id") is None and course_scoped:
            if course_problem:
                problems.append(course_problem)
            elif course_id not in known_courses:
                problems.append("unknown-course")
            else:
                to_set["course_id"] = course_id
        if doc.get("enrollment_id") is None and course_scoped and course_id is not None:
            enrollment_id = pairs.get((user_id, course_id)) if user_id else None
            if enrollment_id is not None:
                to_set["enrollment_id"] = enrollment_id
            elif "unknown-user" not in problems and "unknown-course" not in problems:
                problems.append("no-enrollment")

        score = (doc.get("payload") or {}).get("score")
        converted = numeric_string(score)
        if converted is not None:
            to_set[SCORE_FIELD] = converted
            change["score_from"] = score

        counts = plan.counts
        counts.scanned += 1
        if to_set:
            change["set"] = to_set
            plan.changes.append(change)
        if problems:
            counts.unresolvable += 1
            counts.partially_updated += 1 if to_set else 0
            counts.reasons.update(problems)
        elif to_set:
            counts.updated += 1
        else:
            counts.already_ok += 1
    return plan


def _operations(changes: list[Mongo]) -> list[UpdateOne]:
    """One update per event, each field conditional inside it: a field already filled (or a
    type already fixed) keeps its value, so re-applying a batch, or racing a writer that fixed
    the field first, changes nothing."""
    ops: list[UpdateOne] = []
    for change in changes:
        stage: Mongo = {}
        for name, value in change["set"].items():
            if name == SCORE_FIELD:
                # Only while the stored score is still the string that was read.
                stage[name] = {
                    "$cond": [
                        {"$eq": [f"${name}", {"$literal": change["score_from"]}]},
                        {"$literal": value},
                        f"${name}",
                    ]
                }
            elif name == "type":
                stage["type"] = {
                    "$cond": [
                        {"$eq": ["$type", {"$literal": change["type_from"]}]},
                        {"$literal": value},
                        "$type",
                    ]
                }
            else:
                stage[name] = {"$ifNull": [f"${name}", {"$literal": value}]}
        if stage:
            ops.append(UpdateOne({"_id": change["_id"]}, [{"$set": stage}]))
    return ops


async def _apply(changes: list[Mongo]) -> None:
    ops = _operations(changes)
    if ops:
        await LearningEvent.get_pymongo_collection().bulk_write(ops, ordered=False)


async def _load_checkpoint(restart: bool, dry_run: bool) -> Mongo:
    checkpoints = _checkpoints()
    if restart and not dry_run:
        await checkpoints.delete_one({"_id": CHECKPOINT_ID})
    doc = None if restart else await checkpoints.find_one({"_id": CHECKPOINT_ID})
    if doc is None:
        doc = {
            "_id": CHECKPOINT_ID,
            "last_id": None,
            "pending": None,
            "totals": Summary().as_counts(),
            "started_at": utcnow(),
            "finished_at": None,
            "version": 0,
        }
        if not dry_run:
            await checkpoints.insert_one(doc)
    return doc


async def _commit(
    checkpoint: Mongo, *, last_id: ObjectId, counts: Summary, pending: Mongo | None
) -> None:
    """Moves the checkpoint on; conditional on the version read, so two runs cannot interleave."""
    totals = Summary()
    totals.add(checkpoint["totals"])
    totals.add(counts.as_counts())
    update = {
        "last_id": last_id,
        "pending": pending,
        "totals": totals.as_counts() if pending is None else checkpoint["totals"],
        "updated_at": utcnow(),
        "version": checkpoint["version"] + 1,
    }
    result = await _checkpoints().update_one(
        {"_id": CHECKPOINT_ID, "version": checkpoint["version"]}, {"$set": update}
    )
    if result.matched_count != 1:
        raise BackfillConflict(
            "the checkpoint was moved by another backfill run; only one may run at a time"
        )
    checkpoint.update(update)


async def run_backfill(
    *,
    batch_size: int = 1000,
    dry_run: bool = False,
    limit: int | None = None,
    restart: bool = False,
    pause_seconds: float = 0.0,
    crash_after_batches: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> BackfillResult:
    """Runs (or resumes) the backfill. `limit` stops after that many events this run;
    `crash_after_batches` kills the process right after the Nth batch's writes and before its
    checkpoint commit (to exercise resuming); `pause_seconds` between batches eases the load on a
    live database."""
    await validation.refresh(force=True)
    checkpoint = await _load_checkpoint(restart, dry_run)
    run = Summary()

    pending = checkpoint.get("pending")
    if pending and not dry_run:
        # The previous run stopped between writing a batch and committing it: finish that batch.
        await _apply(pending["changes"])
        counts = Summary()
        counts.add(pending["counts"])
        await _commit(checkpoint, last_id=pending["last_id"], counts=counts, pending=None)
        run.add(pending["counts"])
        if progress:
            progress(counts.scanned)

    last_id = checkpoint["last_id"]
    if pending and dry_run:
        last_id = pending["last_id"]
    events = LearningEvent.get_pymongo_collection()
    if on_total:
        remaining = await events.count_documents({"_id": {"$gt": last_id}} if last_id else {})
        on_total(min(remaining, limit) if limit is not None else remaining)

    batches = 0
    finished = False
    while True:
        size = batch_size if limit is None else min(batch_size, limit - run.scanned)
        if size <= 0:
            break
        query = {"_id": {"$gt": last_id}} if last_id else {}
        docs = (
            await events.find(
                query,
                {
                    "type": 1,
                    "user_id": 1,
                    "course_id": 1,
                    "department_id": 1,
                    "enrollment_id": 1,
                    "payload.courseId": 1,
                    "payload.score": 1,
                },
            )
            .sort("_id", 1)
            .limit(size)
            .to_list()
        )
        if not docs:
            finished = True
            break
        plan = await _plan_batch(docs)
        batch_last = docs[-1]["_id"]
        if not dry_run:
            if plan.changes:
                intent = {
                    "last_id": batch_last,
                    "changes": plan.changes,
                    "counts": plan.counts.as_counts(),
                }
                await _commit(
                    checkpoint, last_id=checkpoint["last_id"], counts=Summary(), pending=intent
                )
                await _apply(plan.changes)
                batches += 1
                if crash_after_batches is not None and batches >= crash_after_batches:
                    os._exit(137)  # simulated crash: writes done, checkpoint not committed
            await _commit(checkpoint, last_id=batch_last, counts=plan.counts, pending=None)
        run.add(plan.counts.as_counts())
        last_id = batch_last
        if progress:
            progress(len(docs))
        if len(docs) < size:  # nothing after this batch (for now)
            finished = True
            break
        if pause_seconds:
            await asyncio.sleep(pause_seconds)

    total = Summary()
    if dry_run:
        total.add(checkpoint["totals"])
        total.add(run.as_counts())
    else:
        total.add(checkpoint["totals"])
        if finished:
            await _checkpoints().update_one(
                {"_id": CHECKPOINT_ID}, {"$set": {"finished_at": utcnow()}}
            )
    return BackfillResult(run=run, total=total, finished=finished, dry_run=dry_run, last_id=last_id)
