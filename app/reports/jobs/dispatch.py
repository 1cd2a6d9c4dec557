"""Ringing the worker's doorbell for a stored job: the one step the API, the worker and the
reaper share. MongoDB stays the truth; a lost doorbell is rung again by the reaper."""

from __future__ import annotations

import structlog

from app.reports.jobs import repository
from app.reports.jobs.models import ReportJob
from app.runtime.resources import Resources

log = structlog.get_logger(__name__)


async def dispatch(
    resources: Resources, job: ReportJob, *, defer_seconds: float = 0, counted: bool = False
) -> bool:
    """Rings the doorbell. Failure is not fatal: the job is in MongoDB and the reaper rings
    again (once `JOB_DISPATCH_GRACE_SECONDS` have passed since `dispatched_at`). `counted`:
    the job was stored with this dispatch already counted (a new job: `dispatch_count` 1), so
    no write comes before the doorbell."""
    assert job.id is not None
    try:
        number = job.dispatch_count if counted else await repository.mark_dispatched(job.id)
        await resources.queue.dispatch_report_job(str(job.id), number, defer_seconds=defer_seconds)
    except Exception as exc:
        log.warning("job_dispatch_failed", job_id=str(job.id), error=str(exc)[:200])
        return False
    return True
