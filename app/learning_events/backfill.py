"""Backfill of learning events stored before API-ISS-035: fills the denormalized course_id,
department_id and enrollment_id and rewrites legacy type spellings (`COURSE_COMPLETED`,
`courseCompleted`, `course_completed`) to the kebab-case code, and holds payload numbers to the
event contract (`payload_numbers`): text the contract accepts (`payload.score: "85"`,
`payload.durationSeconds: "300"`) becomes the number it stands for; a value it refuses is counted
as unresolvable with its reason (`invalid-payload-score`, `invalid-payload-durationSeconds`) and
left as it is.

How it stays correct when run on a live database and killed at any moment:

- Events are read in `_id` order, one batch at a time, after the checkpoint's `last_id`
  (the checkpoint is a document in `backfill_checkpoints`), from one cursor over the `_id`
  index.
- Every change is a conditional per-document pipeline update (`course_id` set only while
  null, `type` only while still the legacy spelling read), so applying it twice is a no-op,
  nothing else in the document is touched and no lock is held beyond one document write.
  Events with the same update (one enrollment's events, mostly) share one `_id $in` statement
  of the bulk write; each document is still updated on its own.
- Before writing a batch, its planned changes and counts are saved in the checkpoint as
  `pending` (a small write-ahead record); after the bulk write the checkpoint moves `last_id`
  on and adds the counts. A run killed in between re-applies the pending batch (no-ops where
  already done) and commits it, so every event is counted exactly once and the summary adds up.
- Two runs at once are refused: each checkpoint write is conditional on the state it read.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from app.common.time import utcnow
from app.learning_events.backfill_plan import (
    PAYLOAD_FIELDS,
    Mongo,
    Summary,
    operations,
    plan_batch,
)
from app.learning_events.models import LearningEvent
from app.lookups import validation

CHECKPOINT_COLLECTION = "backfill_checkpoints"
CHECKPOINT_ID = "learning-events-denormalize-v1"
# What an event's plan reads.
PROJECTION = {
    "type": 1,
    "user_id": 1,
    "course_id": 1,
    "department_id": 1,
    "enrollment_id": 1,
    "payload.courseId": 1,
    **dict.fromkeys(PAYLOAD_FIELDS, 1),
}


class BackfillConflict(RuntimeError):
    """Another backfill run moved the checkpoint underneath this one."""


@dataclass
class BackfillResult:
    run: Summary
    total: Summary
    finished: bool
    dry_run: bool
    last_id: ObjectId | None


def _checkpoints() -> AsyncCollection[Mongo]:
    return LearningEvent.get_pymongo_collection().database[CHECKPOINT_COLLECTION]


async def _apply(changes: list[Mongo]) -> None:
    ops = operations(changes)
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

    # One cursor in `_id` order for the whole run (the `_id` index walked once, a batch in
    # memory at a time), rather than a new query per batch: a query starting after an `_id`
    # costs a walk to that point, or a collection scan, on some servers.
    cursor = (
        events.find({"_id": {"$gt": last_id}} if last_id else {}, PROJECTION)
        .sort("_id", 1)
        .hint([("_id", 1)])
        .batch_size(batch_size)
    )
    batches = 0
    finished = False
    try:
        while True:
            size = batch_size if limit is None else min(batch_size, limit - run.scanned)
            if size <= 0:
                break
            docs = await cursor.to_list(size)
            if not docs:
                finished = True
                break
            plan = await plan_batch(docs)
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
    finally:
        await cursor.close()

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
