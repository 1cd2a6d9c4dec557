"""Every MongoDB query on report jobs, in one place. State changes are compare-and-set updates
so two processes can never both move a job on."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.common.time import utcnow
from app.reports.jobs.models import ACTIVE_STATUSES, JobStatus, JobStep, ReportJob


def _coll() -> Any:
    return ReportJob.get_pymongo_collection()


def _load(doc: dict[str, Any] | None) -> ReportJob | None:
    return ReportJob.model_validate(doc) if doc else None


async def get(job_id: PydanticObjectId) -> ReportJob | None:
    return await ReportJob.get(job_id)


async def count_active_for_user(user_id: str) -> int:
    return int(
        await _coll().count_documents(
            {"requested_by.user_id": user_id, "status": {"$in": [s.value for s in ACTIVE_STATUSES]}}
        )
    )


QUOTA_LOCK_SECONDS = 10
QUOTA_LOCK_WAIT_SECONDS = 5.0


def _quota_locks() -> Any:
    return _coll().database["job_quota_locks"]


@asynccontextmanager
async def user_quota_lock(user_id: str) -> AsyncIterator[bool]:
    """Serialises "count the user's active jobs, then store one" per user, so a burst of
    requests can never all see room under the limit. Yields False when the lock could not be
    had within `QUOTA_LOCK_WAIT_SECONDS`.

    The count is taken from the jobs themselves, so nothing needs healing: a lock whose holder
    died expires after `QUOTA_LOCK_SECONDS`."""
    token = uuid.uuid4().hex
    locks = _quota_locks()
    deadline = time.monotonic() + QUOTA_LOCK_WAIT_SECONDS
    acquired = False
    while True:
        now = utcnow()
        try:
            await locks.insert_one(
                {
                    "_id": user_id,
                    "token": token,
                    "expires_at": now + timedelta(seconds=QUOTA_LOCK_SECONDS),
                }
            )
            acquired = True
            break
        except DuplicateKeyError:
            # Held; take it over only if its holder died (expired).
            await locks.delete_one({"_id": user_id, "expires_at": {"$lt": now}})
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(random.uniform(0.005, 0.03))
    try:
        yield acquired
    finally:
        if acquired:
            await locks.delete_one({"_id": user_id, "token": token})


async def mark_dispatched(job_id: PydanticObjectId) -> int:
    """Counts one more dispatch and returns its number (used in the queue message id)."""
    doc = await _coll().find_one_and_update(
        {"_id": job_id},
        {"$inc": {"dispatch_count": 1}, "$set": {"dispatched_at": utcnow()}},
        projection={"dispatch_count": 1},
        return_document=ReturnDocument.AFTER,
    )
    return int(doc["dispatch_count"]) if doc else 0


async def claim(
    job_id: PydanticObjectId, *, token: str, owner: str, lease_seconds: int
) -> ReportJob | None:
    """Atomically takes a claimable job: queued and due, or running with an expired lease.
    Returns None for a duplicate or late doorbell."""
    now = utcnow()
    doc = await _coll().find_one_and_update(
        {
            "_id": job_id,
            "cancel_requested": {"$ne": True},
            "$or": [
                {
                    "status": JobStatus.QUEUED.value,
                    "$or": [{"available_at": None}, {"available_at": {"$lte": now}}],
                },
                {"status": JobStatus.RUNNING.value, "lease_expires_at": {"$lt": now}},
            ],
        },
        {
            "$set": {
                "status": JobStatus.RUNNING.value,
                "lease_token": token,
                "lease_owner": owner,
                "lease_expires_at": now + timedelta(seconds=lease_seconds),
                "started_at": now,
                "updated_at": now,
                "progress.step": JobStep.RESOLVE.value,
                "progress.percent": 0.0,
                "progress.rows_processed": 0,
            },
            "$inc": {"attempt": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    return _load(doc)


async def heartbeat(
    job_id: PydanticObjectId, token: str, lease_seconds: int, progress: dict[str, Any]
) -> dict[str, Any] | None:
    """Extends the lease and saves progress. None when the lease is no longer ours."""
    now = utcnow()
    doc: dict[str, Any] | None = await _coll().find_one_and_update(
        {"_id": job_id, "lease_token": token, "status": JobStatus.RUNNING.value},
        {
            "$set": {
                "lease_expires_at": now + timedelta(seconds=lease_seconds),
                "updated_at": now,
                **{f"progress.{k}": v for k, v in progress.items()},
            }
        },
        projection={"cancel_requested": 1},
        return_document=ReturnDocument.AFTER,
    )
    return doc


async def save_progress(job_id: PydanticObjectId, token: str, progress: dict[str, Any]) -> bool:
    """Saves a running job's progress if the lease is still ours (between heartbeats)."""
    result = await _coll().update_one(
        {"_id": job_id, "lease_token": token, "status": JobStatus.RUNNING.value},
        {"$set": {"updated_at": utcnow(), **{f"progress.{k}": v for k, v in progress.items()}}},
    )
    return bool(result.matched_count)


async def finish_held(
    job_id: PydanticObjectId,
    token: str,
    fields: dict[str, Any],
    *,
    inc: dict[str, int] | None = None,
    only_if: dict[str, Any] | None = None,
    session: Any = None,
) -> bool:
    """Moves a running job on, only if `token` still holds its lease (fenced commit) and the
    job matches `only_if`; inside `session`'s transaction when given (deliveries with it)."""
    update: dict[str, Any] = {
        "$set": {
            **fields,
            "updated_at": utcnow(),
            "lease_token": None,
            "lease_owner": None,
            "lease_expires_at": None,
        }
    }
    if inc:
        update["$inc"] = inc
    result = await _coll().update_one(
        {"_id": job_id, "lease_token": token, "status": JobStatus.RUNNING.value, **(only_if or {})},
        update,
        session=session,
    )
    return bool(result.modified_count)


CANCELLED_FIELDS: dict[str, Any] = {
    "status": JobStatus.CANCELLED.value,
    "error": {"code": "cancelled", "message": "Cancelled at the user's request."},
}


async def finish_cancelled_if_requested(job_id: PydanticObjectId, token: str) -> bool:
    """A job whose cancel was asked for ends cancelled rather than going back to the queue."""
    return await finish_held(
        job_id,
        token,
        {**CANCELLED_FIELDS, "finished_at": utcnow()},
        only_if={"cancel_requested": True},
    )


async def cancel_orphaned(now: datetime) -> int:
    """Ends jobs whose cancel was asked for but that no worker holds any more (their worker
    died, or they went back to the queue just as the cancel came in)."""
    result = await _coll().update_many(
        {
            "cancel_requested": True,
            "$or": [
                {"status": JobStatus.QUEUED.value},
                {"status": JobStatus.RUNNING.value, "lease_expires_at": {"$lt": now}},
            ],
        },
        {
            "$set": {
                **CANCELLED_FIELDS,
                "finished_at": now,
                "updated_at": now,
                "lease_token": None,
                "lease_owner": None,
                "lease_expires_at": None,
            }
        },
    )
    return int(result.modified_count)


async def cancel_queued(job_id: PydanticObjectId) -> bool:
    now = utcnow()
    result = await _coll().update_one(
        {"_id": job_id, "status": JobStatus.QUEUED.value},
        {
            "$set": {
                "status": JobStatus.CANCELLED.value,
                "cancel_requested": True,
                "finished_at": now,
                "updated_at": now,
                "error": {"code": "cancelled", "message": "Cancelled before it started."},
            }
        },
    )
    return bool(result.modified_count)


async def request_cancel(job_id: PydanticObjectId) -> bool:
    result = await _coll().update_one(
        {"_id": job_id, "status": JobStatus.RUNNING.value},
        {"$set": {"cancel_requested": True, "updated_at": utcnow()}},
    )
    return bool(result.modified_count)


async def fail_over_attempts(job_id: PydanticObjectId, token: str, message: str) -> bool:
    return await finish_held(
        job_id,
        token,
        {
            "status": JobStatus.FAILED.value,
            "finished_at": utcnow(),
            "error": {"code": "max-attempts-exceeded", "message": message, "transient": False},
        },
    )


async def requeue_expired_leases(
    *, live_owners: set[str] | None = None, limit: int = 100
) -> list[ReportJob]:
    """Running jobs whose holder stopped heart-beating go back to the queue. Returns them so the
    caller can ring the doorbell.

    The requeue itself counts a new dispatch (and clears `dispatched_at`), so the next doorbell
    gets a message id no dead run's arq keys can block, and a doorbell that is never rung (the
    caller cut short) is rung by the next reaper run at once. The crashed attempt counts, unless
    its holder is in `live_owners` (a worker still reporting itself: a stall, not a crash).
    At most `limit` jobs per call, so a caller with a deadline never stops half-way through one.
    """
    now = utcnow()
    live = live_owners or set()
    requeued: list[ReportJob] = []
    cursor = _coll().find(
        {"status": JobStatus.RUNNING.value, "lease_expires_at": {"$lt": now}},
        {"_id": 1, "lease_token": 1, "lease_owner": 1},
        limit=limit,
    )
    async for doc in cursor:
        stalled = doc.get("lease_owner") in live
        updated = await _coll().find_one_and_update(
            {
                "_id": doc["_id"],
                "status": JobStatus.RUNNING.value,
                "lease_token": doc.get("lease_token"),
                "lease_expires_at": {"$lt": now},
            },
            {
                "$set": {
                    "status": JobStatus.QUEUED.value,
                    "lease_token": None,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "available_at": None,
                    "dispatched_at": None,
                    "updated_at": utcnow(),
                    "progress.step": JobStep.QUEUED.value,
                },
                # A stall spends no attempt; the attempt number still moves on, so the stalled
                # holder's files (under its own attempt) never collide with the next attempt's.
                "$inc": {"dispatch_count": 1, **({"max_attempts": 1} if stalled else {})},
            },
            return_document=ReturnDocument.AFTER,
        )
        if updated:
            requeued.append(ReportJob.model_validate(updated))
    return requeued


async def queued_jobs_dispatched_before(cutoff: datetime, limit: int = 500) -> list[ReportJob]:
    return (
        await ReportJob.find(
            {
                "status": JobStatus.QUEUED.value,
                "cancel_requested": {"$ne": True},
                "$or": [{"dispatched_at": None}, {"dispatched_at": {"$lt": cutoff}}],
            }
        )
        .limit(limit)
        .to_list()
    )


async def completed_past_retention(now: datetime, limit: int = 500) -> list[ReportJob]:
    return (
        await ReportJob.find({"status": JobStatus.COMPLETED.value, "expires_at": {"$lt": now}})
        .limit(limit)
        .to_list()
    )


async def mark_expired(job_id: PydanticObjectId) -> bool:
    result = await _coll().update_one(
        {"_id": job_id, "status": JobStatus.COMPLETED.value},
        {"$set": {"status": JobStatus.EXPIRED.value, "updated_at": utcnow()}},
    )
    return bool(result.modified_count)


async def queue_figures(now: datetime) -> tuple[int, datetime | None, int]:
    """For the worker's metrics: queued jobs (deferred retries included), the creation time of
    the oldest one due to run, and jobs running on any worker (all on status indexes)."""
    queued = await _coll().count_documents({"status": JobStatus.QUEUED.value})
    due = {
        "status": JobStatus.QUEUED.value,
        "$or": [{"available_at": None}, {"available_at": {"$lte": now}}],
    }
    oldest = await _coll().find_one(due, {"created_at": 1}, sort=[("created_at", 1)])
    running = await _coll().count_documents({"status": JobStatus.RUNNING.value})
    return queued, oldest["created_at"] if oldest else None, running
