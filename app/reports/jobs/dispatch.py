"""Ringing the worker's doorbell for a stored job: the one step the API, the worker and the
reaper share. MongoDB stays the truth; a lost doorbell is rung again by the reaper."""

from __future__ import annotations

import structlog

from app.reports.jobs import repository
from app.reports.jobs.models import ReportJob
from app.runtime.resources import Resources

log = structlog.get_logger(__name__)


async def dispatch(resources: Resources, job: ReportJob, *, defer_seconds: float = 0) -> bool:
    """Rings the doorbell. Failure is not fatal: the job is in MongoDB and the reaper rings
    again."""
    assert job.id is not None
    try:
        number = await repository.mark_dispatched(job.id)
        await resources.queue.dispatch_report_job(str(job.id), number, defer_seconds=defer_seconds)
    except Exception as exc:
        log.warning("job_dispatch_failed", job_id=str(job.id), error=str(exc)[:200])
        return False
    return True
