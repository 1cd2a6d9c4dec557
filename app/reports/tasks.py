"""Worker entry points: what the queue's doorbells and the once-a-minute tick run.

`worker/main.py` wires these into arq through `app.queue`; the API never runs them."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import TypedDict

import structlog

from app.common.time import utcnow
from app.config import Settings
from app.observability import LEASE_TAKEOVERS
from app.queue import CronTask
from app.reports.execution import REPORTS_PREFIX, JobExecutor, storage_prefix
from app.reports.jobs import repository
from app.reports.jobs.dispatch import dispatch
from app.reports.jobs.models import ReportJob
from app.reports.schedules import repository as schedule_repository
from app.reports.schedules.changes.sweep import sweep_baselines
from app.reports.schedules.runner import record_job_outcome
from app.reports.schedules.scheduler import run_due_schedules
from app.runtime.resources import Resources
from app.runtime.workers import live_worker_ids

log = structlog.get_logger(__name__)


class WorkerContext(TypedDict):
    """What every task of a worker process is handed (arq adds keys of its own to its copy:
    `redis`, `job_id`, `job_try`, ...)."""

    resources: Resources
    worker_id: str
    shutdown: asyncio.Event  # set on SIGTERM / SIGINT: running work hands its job back
    running: set[str]  # ids of the report jobs running in this process
    scratch: Path | None  # this process's work directory (None when sharing a test's)


REAPER_TIMEOUT_SECONDS = 14
# The reaper starts no new dispatch after this: each takes at most the Redis socket timeout, so
# a run finishes well inside its cron timeout and is never cut between two steps.
REAPER_BUDGET_SECONDS = 8.0


async def run_report_job(ctx: WorkerContext, job_id: str) -> str | None:
    """Doorbell for one job: claim it in MongoDB and run it. Duplicates do nothing."""
    resources = ctx["resources"]
    executor = JobExecutor(
        resources, ctx["worker_id"], ctx["shutdown"], delivers=schedule_repository.delivers
    )
    ctx["running"].add(job_id)
    try:
        status = await executor.run(job_id)
    finally:
        ctx["running"].discard(job_id)
        structlog.contextvars.unbind_contextvars("job_id", "request_id")
    claimed = executor.claimed
    if status is not None and claimed is not None and claimed.schedule_id is not None:
        job = await ReportJob.get(job_id)  # the final state, for the schedule's run history
        if job is not None:
            await _record_schedule_outcome(resources, job)
    return status.value if status else None


async def _record_schedule_outcome(resources: Resources, job: ReportJob) -> None:
    try:
        await record_job_outcome(resources.settings, job)
    except Exception as exc:
        log.warning("schedule_outcome_failed", job_id=str(job.id), error=str(exc)[:200])


async def reap(ctx: WorkerContext) -> dict[str, int]:
    """Requeues jobs whose worker died (expired lease) and rings again for queued jobs whose
    doorbell was lost (Redis flushed or restarted, a dispatch that failed or was cut short, a
    message taken by a run that died).

    Every step is complete on its own (a requeue counts its dispatch in the same write), and the
    work per run is bounded (`REAPER_BATCH_SIZE` jobs, a time budget well inside the cron
    timeout), so a run cut short leaves nothing half done: the next run carries on."""
    resources = ctx["resources"]
    settings = resources.settings
    deadline = time.monotonic() + REAPER_BUDGET_SECONDS
    cancelled = await repository.cancel_orphaned(utcnow())
    live = await live_worker_ids(settings)
    requeued = await repository.requeue_expired_leases(
        live_owners=live, attempts_cap=settings.job_attempts_cap, limit=settings.reaper_batch_size
    )
    LEASE_TAKEOVERS.inc(len(requeued))
    for job in requeued:
        log.warning("job_lease_expired_requeued", job_id=str(job.id), attempt=job.attempt)
        if time.monotonic() < deadline:
            await dispatch(resources, job)
    requeued_ids = {job.id for job in requeued}
    cutoff = utcnow() - timedelta(seconds=settings.job_dispatch_grace_seconds)
    redispatched = 0
    for job in await repository.queued_jobs_dispatched_before(
        cutoff, limit=settings.reaper_batch_size
    ):
        if job.id in requeued_ids or time.monotonic() >= deadline:
            continue
        if job.dispatch_count and await resources.queue.is_pending(str(job.id), job.dispatch_count):
            continue  # its doorbell is still waiting in Redis
        delay = 0.0
        if job.available_at and job.available_at > utcnow():
            delay = (job.available_at - utcnow()).total_seconds()
        await dispatch(resources, job, defer_seconds=delay)
        redispatched += 1
    if requeued or redispatched or cancelled:
        log.info("reaper", requeued=len(requeued), redispatched=redispatched, cancelled=cancelled)
    return {"requeued": len(requeued), "redispatched": redispatched, "cancelled": cancelled}


async def expire_files(ctx: WorkerContext) -> int:
    """Retention: deletes files past their retention and marks their jobs expired."""
    resources = ctx["resources"]
    expired = 0
    for job in await repository.completed_past_retention(utcnow()):
        assert job.id is not None
        # Expired first, files second: a download in between answers 410, never a missing file.
        if not await repository.mark_expired(job.id):
            continue
        expired += 1
        try:
            for key in await resources.storage.list_keys(storage_prefix(job)):
                await resources.storage.delete(key)
        except Exception as exc:  # one unreachable file must not stop the sweep
            log.warning("retention_delete_failed", job_id=str(job.id), error=str(exc)[:200])
    if expired:
        log.info("retention_expired", jobs=expired)
    return expired


async def sweep_stale_uploads(ctx: WorkerContext) -> int:
    """Aborts the uploads of report files left unfinished for over `STALE_UPLOAD_HOURS` (a
    killed worker's open S3 multipart upload, billed until aborted; a local partial file)."""
    resources = ctx["resources"]
    hours = resources.settings.stale_upload_hours
    aborted = await resources.storage.abort_stale_uploads(
        REPORTS_PREFIX, older_than=timedelta(hours=hours)
    )
    if aborted:
        log.info("stale_uploads_aborted", uploads=aborted, older_than_hours=hours)
    return aborted


async def sweep_old_baselines(ctx: WorkerContext) -> int:
    """Deletes change-report fingerprints no scope's baseline needs (schedules/changes/sweep)."""
    return await sweep_baselines(ctx["resources"].storage)


async def scheduler_tick(ctx: WorkerContext) -> int:
    """Turns due schedules into jobs (exactly one per schedule and scheduled time)."""
    return await run_due_schedules(ctx["resources"])


def cron_tasks(settings: Settings) -> list[CronTask]:
    return [
        CronTask("scheduler_tick", scheduler_tick, second=0, run_at_startup=True),
        # Every 15 s, so a dead worker's job is taken over soon after its lease expires.
        CronTask(
            "reap_jobs",
            reap,
            second={5, 20, 35, 50},
            run_at_startup=True,
            timeout_seconds=REAPER_TIMEOUT_SECONDS,
        ),
        CronTask("expire_files", expire_files, second=40, every_minutes=5),
        CronTask("sweep_stale_uploads", sweep_stale_uploads, second=45, every_minutes=60),
        CronTask("sweep_old_baselines", sweep_old_baselines, second=50, every_minutes=60),
    ]
