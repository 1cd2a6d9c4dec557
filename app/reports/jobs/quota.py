"""The per-user job quota: counting a user's active jobs and the short lock under which a
request counts them and stores its job (so a burst accepts exactly the limit)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.common.time import utcnow
from app.config import Settings
from app.errors import ServiceBusy, TooManyRequests
from app.reports.jobs.models import ACTIVE_STATUSES, ReportJob
from app.runtime import deadline as request_deadline


def _coll() -> Any:
    return ReportJob.get_pymongo_collection()


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
async def user_quota_lock(user_id: str, *, hold_seconds: float = 0) -> AsyncIterator[bool]:
    """Serialises "count the user's active jobs, then store one" per user, so a burst of
    requests can never all see room under the limit. Yields False when the lock could not be
    had within `QUOTA_LOCK_WAIT_SECONDS`.

    The count is taken from the jobs themselves, so nothing needs healing: a lock whose holder
    died expires after `QUOTA_LOCK_SECONDS` (or `hold_seconds`, the longest its holder can take,
    when longer). A release that fails (the request's deadline passed) is done in the
    background, so the user's next request does not wait for the lock to expire."""
    token = uuid.uuid4().hex
    locks = _quota_locks()
    release = partial(locks.delete_one, {"_id": user_id, "token": token})
    hold = timedelta(seconds=max(QUOTA_LOCK_SECONDS, hold_seconds))
    deadline = time.monotonic() + QUOTA_LOCK_WAIT_SECONDS
    acquired = False
    try:
        while True:
            now = utcnow()
            try:
                await locks.insert_one({"_id": user_id, "token": token, "expires_at": now + hold})
                acquired = True
                break
            except DuplicateKeyError:
                # Held; take it over only if its holder died (expired).
                await locks.delete_one({"_id": user_id, "expires_at": {"$lt": now}})
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(random.uniform(0.005, 0.03))
    except BaseException:
        # Cut short: an insert the database received may still be applied.
        request_deadline.detach("quota-lock-release", release)
        raise
    try:
        yield acquired
    finally:
        if acquired:
            try:
                await release()
            except BaseException as exc:
                request_deadline.detach("quota-lock-release", release)
                if not isinstance(exc, Exception):
                    raise  # a cancellation goes on


async def reserve(stack: AsyncExitStack, settings: Settings, user_id: str) -> None:
    """Takes the user's quota lock on `stack` (held until the job is stored: a burst never
    overshoots the quota) and refuses the request when the user has too many active jobs."""
    lock = user_quota_lock(user_id, hold_seconds=settings.request_deadline_seconds + 1)
    if not await stack.enter_async_context(lock):
        # Not a quota breach: this user's other requests held the count too long.
        raise ServiceBusy(
            "Too many reports are being requested at once; try again shortly.", retry_after=1
        )
    active = await count_active_for_user(user_id)
    if active >= settings.max_active_jobs_per_user:
        raise TooManyRequests(
            f"You already have {active} reports queued or running "
            f"(limit {settings.max_active_jobs_per_user}); try again when one finishes.",
            retry_after=30,
            code="job-quota-exceeded",
        )
