"""Looking at what a report job left behind."""

from __future__ import annotations

from datetime import timedelta

from beanie import PydanticObjectId

from app.platform.models import Course, Department, Enrollment
from app.reports.jobs.models import JobStatus, ReportJob
from app.runtime.resources import Resources
from tests import factories as f

_INSERT_BATCH = 20_000


async def files_of(resources: Resources, job: ReportJob) -> list[str]:
    """The storage keys under the job's own prefix (its file, or any stray part of one)."""
    return await resources.storage.list_keys(f"reports/{job.created_at:%Y/%m/%d}/{job.id}/")


async def stored_job(job_id: str | PydanticObjectId) -> ReportJob:
    """The job as it is stored now; fails the test when there is none."""
    job = await ReportJob.get(job_id)
    assert job is not None, f"no report job {job_id}"
    return job


async def stored_job_id(job_id: str) -> PydanticObjectId:
    """The stored job's id as the ObjectId that `app.reports.jobs.repository` takes; fails the
    test when there is no such job."""
    job = await stored_job(job_id)
    assert job.id is not None
    return job.id


def stored_keys(job: ReportJob) -> list[str]:
    """What a completed job keeps in storage: its file and, for CSV and JSON Lines, the row
    index beside it (in the order storage lists them)."""
    assert job.result is not None
    return sorted(k for k in (job.result.storage_key, job.result.row_index_key) if k)


async def finished_job(job_id: str) -> ReportJob | None:
    """The job once it has ended (completed, failed or cancelled), else None: a predicate for
    `wait_until`."""
    job = await ReportJob.get(job_id)
    if job and job.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
        return job
    return None


async def insert_enrollments(
    course: Course, dept: Department, count: int, *, spread: timedelta | None = None
) -> None:
    """`count` in-progress enrollments of 2026-02-01 08:00 in `course`, each its own learner
    (whose user document the reports do not need), inserted in bulk; with `spread`, the i-th
    is enrolled `i * spread` later."""
    collection = Enrollment.get_pymongo_collection()
    for start in range(0, count, _INSERT_BATCH):
        await collection.insert_many(
            [
                {
                    "user_id": PydanticObjectId(),
                    "course_id": course.id,
                    "department_id": dept.id,
                    "status": "in-progress",
                    "enrolled_at": f.dt(2026, 2, 1, 8) + (spread or timedelta()) * i,
                    "progress_percent": float(i % 100),
                    "time_spent_minutes": i,
                }
                for i in range(start, min(count, start + _INSERT_BATCH))
            ]
        )
