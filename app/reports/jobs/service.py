"""The rules of report jobs: who may run what, idempotency, quotas, cancel, retry, download."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

import structlog
from beanie import PydanticObjectId
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.errors import DuplicateKeyError

from app.common.schemas import decode_cursor, encode_cursor
from app.common.time import as_utc, utcnow
from app.errors import (
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    TooManyRequests,
    ValidationFailed,
)
from app.reports.jobs import repository
from app.reports.jobs.dispatch import dispatch
from app.reports.jobs.models import (
    RETRYABLE_STATUSES,
    FileOptions,
    IdempotencyRecord,
    JobStatus,
    ReportJob,
    Requester,
)
from app.reports.jobs.schemas import JobFilters
from app.runtime.resources import Resources
from app.security import DataScope, Principal, resolve_scope

log = structlog.get_logger(__name__)
IDEMPOTENCY_PENDING = timedelta(seconds=60)


def parse_id(value: str, what: str = "job") -> PydanticObjectId:
    if not ObjectId.is_valid(value):
        raise NotFound(f"No {what} with id {value!r}.")
    return PydanticObjectId(value)


def requester_of(principal: Principal) -> Requester:
    return Requester(
        user_id=principal.user_id,
        name=principal.name,
        email=principal.email,
        roles=[r.value for r in principal.roles],
        department_ids=list(principal.department_ids),
    )


def validate_parameters(report_type: str, fmt: str, parameters: dict[str, Any]) -> Any:
    """Validates a report request; returns the report definition and parsed parameters."""
    from app.reports.types import get_report_type

    definition = get_report_type(report_type, field="body.reportType")
    if fmt not in definition.formats:
        raise ValidationFailed.one(
            "body.format",
            f"{fmt!r} is not available for {report_type}",
            allowed=list(definition.formats),
        )
    return definition, definition.parse(parameters)


def _request_hash(report_type: str, fmt: str, parameters: dict[str, Any], extra: Any) -> str:
    canonical = json.dumps(
        {"reportType": report_type, "format": fmt, "parameters": parameters, "extra": extra},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Created:
    job: ReportJob
    replayed: bool = False


class JobOrigin(TypedDict, total=False):
    """Where a job comes from and how it is to be made, beyond type, format and parameters."""

    template_id: PydanticObjectId | None
    template_version: int | None
    schedule_id: PydanticObjectId | None
    scheduled_for: datetime | None
    retry_of_job_id: PydanticObjectId | None
    idempotency_key: str | None
    request_id: str | None
    enforce_quota: bool
    options: FileOptions | None


async def create_job(
    resources: Resources,
    principal: Principal,
    *,
    report_type: str,
    format: str,
    parameters: dict[str, Any],
    **origin: Unpack[JobOrigin],
) -> ReportJob:
    created = await create_job_ex(
        resources,
        principal,
        report_type=report_type,
        format=format,
        parameters=parameters,
        **origin,
    )
    return created.job


async def create_job_ex(
    resources: Resources,
    principal: Principal,
    *,
    report_type: str,
    format: str,
    parameters: dict[str, Any],
    **origin: Unpack[JobOrigin],
) -> Created:
    """Validates, checks the caller's right and scope *now*, stores the job and rings the
    worker's doorbell. A job whose doorbell could not be rung stays queued; the reaper rings it."""
    settings = resources.settings
    template_id = origin.get("template_id")
    schedule_id = origin.get("schedule_id")
    scheduled_for = origin.get("scheduled_for")
    idempotency_key = origin.get("idempotency_key")
    options = origin.get("options")
    definition, params = validate_parameters(report_type, format, parameters)
    if not definition.allows(principal):
        raise Forbidden(
            f"The role {principal.role.value!r} may not run {report_type} reports.",
            code="report-type-not-allowed",
        )
    scope = await resolve_scope(principal)
    now = utcnow()
    resolved = definition.resolve(params, scope, now)

    record: IdempotencyRecord | None = None
    if idempotency_key:
        request_hash = _request_hash(
            report_type, format, parameters, [str(template_id), options and options.model_dump()]
        )
        existing = await _replay(principal.user_id, idempotency_key, request_hash)
        if existing:
            return Created(existing, replayed=True)

    if origin.get("enforce_quota", True):
        active = await repository.count_active_for_user(principal.user_id)
        if active >= settings.max_active_jobs_per_user:
            raise TooManyRequests(
                f"You already have {active} reports queued or running "
                f"(limit {settings.max_active_jobs_per_user}); try again when one finishes.",
                retry_after=30,
                code="job-quota-exceeded",
            )

    job = ReportJob(
        report_type=report_type,
        format=format,
        parameters=parameters,
        options=options or FileOptions(),
        resolved_parameters=resolved.parameters,
        scope=resolved.scope.to_document(),
        requested_by=requester_of(principal),
        template_id=template_id,
        template_version=origin.get("template_version"),
        schedule_id=schedule_id,
        scheduled_for=scheduled_for,
        retry_of_job_id=origin.get("retry_of_job_id"),
        request_id=origin.get("request_id"),
        max_attempts=settings.job_max_attempts,
    )
    job.id = PydanticObjectId()
    if idempotency_key:
        record = IdempotencyRecord(
            user_id=principal.user_id, key=idempotency_key, request_hash=request_hash, job_id=job.id
        )
        try:
            await record.insert()
        except DuplicateKeyError as exc:
            existing = await _replay(principal.user_id, idempotency_key, request_hash)
            if existing:
                return Created(existing, replayed=True)
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                code="idempotency-request-in-progress",
                headers={"Retry-After": "1"},
            ) from exc
    try:
        await job.insert()
    except DuplicateKeyError as exc:
        if record:
            await record.delete()
        if schedule_id and scheduled_for:
            raise Conflict(
                "A job for this schedule and time already exists.", code="schedule-slot-taken"
            ) from exc
        raise
    await dispatch(resources, job)
    log.info("job_created", job_id=str(job.id), report_type=report_type, format=format)
    return Created(job)


async def _replay(user_id: str, key: str, request_hash: str) -> ReportJob | None:
    record = await IdempotencyRecord.find_one({"user_id": user_id, "key": key})
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency-key-reused",
        )
    job = await repository.get(record.job_id)
    if job is not None:
        return job
    if utcnow() - as_utc(record.created_at) < IDEMPOTENCY_PENDING:
        # The first request with this key is still storing its job.
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency-request-in-progress",
            headers={"Retry-After": "1"},
        )
    await record.delete()  # its job was never stored: the key is free again
    return None


def _visible(job: ReportJob, principal: Principal) -> bool:
    return principal.is_admin or job.requested_by.user_id == principal.user_id


async def get_job(principal: Principal, job_id: str) -> ReportJob:
    job = await repository.get(parse_id(job_id))
    if job is None or not _visible(job, principal):
        raise NotFound(f"No job with id {job_id!r}.")
    return job


async def list_jobs(
    principal: Principal, filters: JobFilters, *, limit: int, cursor: str | None
) -> tuple[list[ReportJob], str | None]:
    query: dict[str, Any] = {}
    if principal.is_admin:
        if filters.user_id:
            query["requested_by.user_id"] = filters.user_id
    else:
        if filters.user_id and filters.user_id != principal.user_id:
            raise Forbidden("Only admins may list other users' jobs.", code="forbidden-filter")
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
    if cursor:
        try:
            position = decode_cursor(cursor)
            at = datetime.fromisoformat(position["c"])
            last_id = PydanticObjectId(position["i"])
        except (ValueError, KeyError, TypeError, InvalidId) as exc:
            raise ValidationFailed.one("cursor", "not a valid cursor") from exc
        query["$or"] = [
            {"created_at": {"$lt": at}},
            {"created_at": at, "_id": {"$lt": last_id}},
        ]
    jobs = await ReportJob.find(query).sort("-created_at", "-_id").limit(limit + 1).to_list()
    next_cursor = None
    if len(jobs) > limit:
        jobs = jobs[:limit]
        last = jobs[-1]
        next_cursor = encode_cursor({"c": last.created_at.isoformat(), "i": str(last.id)})
    return jobs, next_cursor


async def cancel_job(principal: Principal, job_id: str) -> ReportJob:
    job = await get_job(principal, job_id)
    assert job.id is not None
    if (job.status == JobStatus.QUEUED and await repository.cancel_queued(job.id)) or (
        job.status == JobStatus.RUNNING and await repository.request_cancel(job.id)
    ):
        pass
    else:
        fresh = await repository.get(job.id)
        status = fresh.status if fresh else job.status
        if status in (JobStatus.QUEUED, JobStatus.RUNNING):  # raced with a state change
            return await cancel_job(principal, job_id)
        if status == JobStatus.CANCELLED:
            return fresh or job
        raise Conflict(
            f"The job is already {status.value}; only queued or running jobs can be cancelled.",
            code="job-not-cancellable",
        )
    refreshed = await repository.get(job.id)
    return refreshed or job


async def retry_job(resources: Resources, principal: Principal, job_id: str) -> ReportJob:
    job = await get_job(principal, job_id)
    if job.status not in RETRYABLE_STATUSES:
        raise Conflict(
            f"Only failed or cancelled jobs can be retried; this one is {job.status.value}.",
            code="job-not-retryable",
        )
    return await create_job(
        resources,
        principal,
        report_type=job.report_type,
        format=job.format,
        parameters=job.parameters,
        template_id=job.template_id,
        template_version=job.template_version,
        retry_of_job_id=job.id,
        options=job.options,
    )


@dataclass
class Download:
    job: ReportJob
    url: str | None  # presigned URL, or None to stream from storage


async def prepare_download(resources: Resources, principal: Principal, job_id: str) -> Download:
    job = await get_job(principal, job_id)
    if job.status == JobStatus.EXPIRED:
        raise Gone(
            "The file of this report was removed by retention; run it again.", code="report-expired"
        )
    if job.status != JobStatus.COMPLETED or job.result is None:
        raise Conflict(
            f"The report is {job.status.value}; the file is available once it is completed.",
            code="report-not-ready",
        )
    await _recheck_access(principal, job)
    result = job.result
    if not await resources.storage.exists(result.storage_key):
        raise Gone(
            "The file of this report is no longer available; run it again.",
            code="report-file-missing",
        )
    url = await resources.storage.presigned_url(
        result.storage_key,
        filename=result.file_name,
        content_type=result.content_type,
        ttl_seconds=resources.settings.presigned_url_ttl_seconds,
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
            code="access-revoked",
        )
