"""Looking at what a report job left behind."""

from __future__ import annotations

from app.reports.jobs.models import JobStatus, ReportJob
from app.runtime.resources import Resources


async def files_of(resources: Resources, job: ReportJob) -> list[str]:
    """The storage keys under the job's own prefix (its file, or any stray part of one)."""
    return await resources.storage.list_keys(f"reports/{job.created_at:%Y/%m/%d}/{job.id}/")


async def finished_job(job_id: str) -> ReportJob | None:
    """The job once it has ended (completed, failed or cancelled), else None: a predicate for
    `wait_until`."""
    job = await ReportJob.get(job_id)
    if job and job.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
        return job
    return None
