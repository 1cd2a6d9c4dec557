"""How an attempt ends: completed, failed, cancelled, retried later or handed back.

The state machine: a body that returned commits (fenced); a body cancelled by the heartbeat ends
as the heartbeat's reason says (cancelled, lease lost: nothing, shutdown: released without
spending an attempt); a body that raised fails the job for good when another attempt cannot
help (``PermanentJobError``, domain and validation errors, a missing type) or when the attempts
are spent, and otherwise goes back to the queue after an exponential back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from app.common.time import utcnow
from app.config import Settings
from app.errors import AppError
from app.observability import JOB_RETRIES
from app.reports.deliveries import outbox
from app.reports.execution.lease import Run, StopReason, discard_file
from app.reports.jobs import repository
from app.reports.jobs.dispatch import dispatch
from app.reports.jobs.models import JobStatus, JobStep
from app.runtime.resources import Resources

log = structlog.get_logger(__name__)


class PermanentJobError(Exception):
    """A failure that another attempt cannot fix (bad parameters, limits, missing type)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_kind(exc: Exception) -> str:
    """What kind of service failed, for a message that names no host or URL."""
    module = type(exc).__module__
    if module.startswith(("pymongo", "bson")):
        return "database"
    if module.startswith(("botocore", "aiobotocore", "boto3")) or isinstance(exc, OSError):
        return "storage"
    if module.startswith("redis"):
        return "queue"
    return "processing"


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: the back-off doubles with every attempt."""
    return float(settings.job_retry_backoff_seconds * 2 ** (attempt - 1))


class Outcome:
    """Settles one attempt: records how it ended, fenced by the attempt's lease."""

    def __init__(self, resources: Resources, run: Run, delivers: outbox.ScheduleDelivers) -> None:
        self.resources = resources
        self.run = run
        self.delivers = delivers  # whether the job's schedule still delivers (notices)

    async def settle(
        self, body: asyncio.Task[Any], commit: Callable[[], Awaitable[bool]]
    ) -> JobStatus | None:
        """Awaits ``body`` and records its end; None when the job is no longer this worker's
        (or was handed back)."""
        run = self.run
        try:
            await body
            if await commit():
                return JobStatus.COMPLETED
            # Refused: a cancel came first (the job ends cancelled) or the lease is gone.
            return await self.stopped() if run.stop_reason == StopReason.CANCELLED else None
        except asyncio.CancelledError:
            if run.stop_reason is None:  # the worker itself is being cancelled
                run.stop_reason = StopReason.SHUTDOWN
                await asyncio.shield(self.release())
                raise
            return await self.stopped()
        except Exception as exc:
            return await self.failed(exc)

    async def stopped(self) -> JobStatus | None:
        run = self.run
        await discard_file(self.resources.storage, run)
        if run.stop_reason == StopReason.CANCELLED:
            ok = await repository.finish_cancelled_if_requested(run.job_id, run.token)
            return JobStatus.CANCELLED if ok else None
        if run.stop_reason == StopReason.SHUTDOWN:
            await self.release()
        return None

    async def release(self) -> None:
        """Clean shutdown: hand the job back without spending an attempt, ring the doorbell."""
        run = self.run
        await discard_file(self.resources.storage, run)
        with contextlib.suppress(Exception):
            if await repository.finish_cancelled_if_requested(run.job_id, run.token):
                return
            released = await repository.finish_held(
                run.job_id,
                run.token,
                {
                    "status": JobStatus.QUEUED.value,
                    "progress.step": JobStep.QUEUED.value,
                    "available_at": None,
                },
                inc={"attempt": -1},
            )
            if released:
                await dispatch(self.resources, run.job)

    async def failed(self, exc: Exception) -> JobStatus | None:
        run = self.run
        job = run.job
        await discard_file(self.resources.storage, run)
        permanent = isinstance(exc, PermanentJobError | AppError | ValidationError)
        if isinstance(exc, PermanentJobError):
            code, message = exc.code, exc.message
        elif isinstance(exc, AppError):
            code, message = exc.code, str(exc.detail or exc.title)
        elif permanent:
            code, message = "job-request-invalid", str(exc).splitlines()[0][:300]
        else:
            # Driver and storage errors can name hosts and URLs: those stay in the log.
            log.warning("job_attempt_failed", error=str(exc)[:500], error_type=type(exc).__name__)
            code = "job-interrupted"
            message = (
                f"A temporary {error_kind(exc)} error interrupted the report "
                f"(request id {job.request_id or 'n/a'})."
            )
        # An accepted cancel wins over a failure too: the job ends as the user asked.
        if await repository.finish_cancelled_if_requested(run.job_id, run.token):
            return JobStatus.CANCELLED
        budget = job.attempt_budget(self.resources.settings.job_attempts_cap)
        if permanent or job.attempt >= budget:
            if not permanent:
                message = f"Gave up after {job.attempt} attempts; last error: {message}"
                log.error("job_failed", error=message, exc_info=exc)
            else:
                log.warning("job_failed", code=code, error=message)
            fields = {
                "status": JobStatus.FAILED.value,
                "finished_at": utcnow(),
                "error": {"code": code, "message": message, "transient": not permanent},
            }
            # A scheduled run's owner is told, in the same transaction as this fenced update.
            ok = await outbox.commit_failed(
                job,
                self.resources.settings,
                message,
                lambda session: repository.finish_held(
                    run.job_id, run.token, fields, session=session
                ),
                delivers=self.delivers,
            )
            return JobStatus.FAILED if ok else None
        delay = retry_delay(self.resources.settings, job.attempt)
        log.warning("job_retry_scheduled", error=message, attempt=job.attempt, delay=delay)
        JOB_RETRIES.inc()
        ok = await repository.finish_held(
            run.job_id,
            run.token,
            {
                "status": JobStatus.QUEUED.value,
                "available_at": utcnow() + timedelta(seconds=delay),
                "progress.step": JobStep.QUEUED.value,
                "error": {"code": code, "message": message, "transient": True},
            },
        )
        if ok:
            await dispatch(self.resources, job, defer_seconds=delay)
        return JobStatus.QUEUED if ok else None
