"""The rules of report jobs: who sees them, cancel, retry, download. Creating one is the road in
`app/reports/jobs/requests.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.audit.context import note_hidden
from app.common.ids import parse_id
from app.common.pagination import Listed, PageRequest, paginate
from app.common.time import as_utc, utcnow
from app.errors import Conflict, Forbidden, Gone, NotFound
from app.reports.jobs import repository
from app.reports.jobs.models import RETRYABLE_STATUSES, JobStatus, ReportJob
from app.reports.jobs.requests import ReportRequest, Submission, submit
from app.reports.jobs.schemas import JobFilters
from app.runtime.resources import Resources
from app.security import DataScope, Principal, resolve_scope


def _visible(job: ReportJob, principal: Principal) -> bool:
    return principal.is_admin or job.requested_by.user_id == principal.user_id


async def get_job(principal: Principal, job_id: str) -> ReportJob:
    job = await repository.get(parse_id(job_id, "job", code="job-not-found"))
    if job is None or not _visible(job, principal):
        if job is not None:
            note_hidden("job", job.id)  # another user's: the same 404, recorded as a probe
        raise NotFound(f"No job with id {job_id!r}.", code="job-not-found")
    return job


async def list_jobs(
    principal: Principal, filters: JobFilters, page: PageRequest
) -> Listed[ReportJob]:
    query: dict[str, Any] = {}
    if principal.is_admin:
        if filters.user_id:
            query["requested_by.user_id"] = filters.user_id
    else:
        if filters.user_id and filters.user_id != principal.user_id:
            raise Forbidden("Only admins may list other users' jobs.", code="filter-not-allowed")
        query["requested_by.user_id"] = principal.user_id
    if filters.status:
        query["status"] = filters.status.value
    if filters.report_type:
        query["report_type"] = filters.report_type
    if filters.format:
        query["format"] = filters.format
    created: dict[str, Any] = {}
    if filters.created_from:
        created["$gte"] = filters.created_from
    if filters.created_to:
        created["$lt"] = filters.created_to
    if created:
        query["created_at"] = created
    return await paginate(ReportJob, query, page)


async def cancel_job(principal: Principal, job_id: str) -> ReportJob:
    job = await get_job(principal, job_id)
    assert job.id is not None
    # A job changes state between our read and our update at most a few times (queued →
    # running → ended): one re-read settles a race; a second race is answered, not retried.
    for _ in range(2):
        if await _ask_cancel(job):
            return await repository.get(job.id) or job
        job = await repository.get(job.id) or job
        if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            break
    if job.status == JobStatus.CANCELLED:
        return job
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        raise Conflict(
            "The job changed state while it was being cancelled; try again.",
            code="job-not-cancellable",
        )
    raise Conflict(
        f"The job is already {job.status.value}; only queued or running jobs can be cancelled.",
        code="job-not-cancellable",
    )


async def _ask_cancel(job: ReportJob) -> bool:
    """Cancels a queued job or asks a running one to stop; False when the job was no longer in
    the state it was read in."""
    assert job.id is not None
    if job.status == JobStatus.QUEUED:
        return await repository.cancel_queued(job.id)
    if job.status == JobStatus.RUNNING:
        return await repository.request_cancel(job.id)
    return False


async def retry_job(resources: Resources, principal: Principal, job_id: str) -> Submission:
    """A new job with the original request, pointing back to the failed one. A scheduled job's
    retry stays in its schedule's history (same scheduleId, so its outcome counts for the
    schedule) but takes no slot: the slot belongs to the original."""
    job = await get_job(principal, job_id)
    if job.status not in RETRYABLE_STATUSES:
        raise Conflict(
            f"Only failed or cancelled jobs can be retried; this one is {job.status.value}.",
            code="job-not-retryable",
        )
    return await submit(
        resources,
        principal,
        ReportRequest(
            report_type=job.report_type,
            format=job.format,
            parameters=job.parameters,
            options=job.options,
            locale=job.locale,
            columns=tuple(job.columns) if job.columns is not None else None,
            template_id=job.template_id,
            template_version=job.template_version,
            schedule_id=job.schedule_id,
            retry_of_job_id=job.id,
            delivery=job.delivery,
        ),
    )


@dataclass
class Download:
    job: ReportJob
    url: str | None  # presigned URL, or None to stream from storage


async def prepare_download(resources: Resources, principal: Principal, job_id: str) -> Download:
    """What to answer a download with. A file past its `expiresAt` is refused (410) whether or
    not the retention sweep (every 5 minutes) has removed it yet, and a presigned link never
    outlives it."""
    job = await get_job(principal, job_id)
    now = utcnow()
    if job.status == JobStatus.EXPIRED:
        raise Gone(
            "The file of this report was removed by retention; run it again.", code="job-expired"
        )
    if job.status == JobStatus.COMPLETED and job.expires_at and as_utc(job.expires_at) <= now:
        raise Gone(
            "The file of this report passed its retention; run it again.", code="job-expired"
        )
    if job.status != JobStatus.COMPLETED or job.result is None:
        raise Conflict(
            f"The report is {job.status.value}; the file is available once it is completed.",
            code="job-not-ready",
        )
    await _recheck_access(principal, job)
    result = job.result
    if not await resources.storage.exists(result.storage_key):
        raise Gone(
            "The file of this report is no longer available; run it again.",
            code="job-file-missing",
        )
    ttl = resources.settings.presigned_url_ttl_seconds
    if job.expires_at is not None:
        ttl = max(1, min(ttl, int((as_utc(job.expires_at) - now).total_seconds())))
    url = await resources.storage.presigned_url(
        result.storage_key,
        filename=result.file_name,
        content_type=result.content_type,
        ttl_seconds=ttl,
    )
    return Download(job=job, url=url)


async def _recheck_access(principal: Principal, job: ReportJob) -> None:
    """The caller must still have the right to the data in the file, now."""
    if principal.is_admin or not job.scope:
        return
    current = await resolve_scope(principal)
    stored = DataScope.from_document(job.scope)
    lost: list[str] = []
    for name, had, has in (
        ("departmentIds", stored.department_ids, current.department_ids),
        ("courseIds", stored.course_ids, current.course_ids),
    ):
        if has is None:
            continue
        if had is None or not had <= has:
            lost.append(name)
    if stored.user_id is None and current.user_id is not None:
        lost.append("userId")
    if stored.user_id and current.user_id and stored.user_id != current.user_id:
        lost.append("userId")
    if lost:
        raise Forbidden(
            "You no longer have access to all of the data in this report.",
            code="job-access-revoked",
        )
