"""Jobs API (API-ISS-030): 6 endpoints under /api/v1/reports/jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from app.audit import AuditAction, record_job, record_run
from app.common.http import IdempotencyKey, RequestId
from app.common.schemas import Page
from app.common.time import BoundedDateTime
from app.config import Settings
from app.deps import ResourcesDep
from app.errors import Gone, Problems, problem_responses
from app.reports.deliveries import service as deliveries
from app.reports.deliveries.models import DeliveryConfig
from app.reports.formats import compresses, file_response, served_as
from app.reports.jobs import service
from app.reports.jobs.models import JOB_SORTS, JobStatus
from app.reports.jobs.requests import prepare, submit
from app.reports.jobs.responses import ACCEPTED, JOBS_PREFIX, REPLAYED, accepted
from app.reports.jobs.schemas import JobCreate, JobFilters, JobOut
from app.reports.templates import job_bodies
from app.runtime.body_checks import BodyParts, checks_body_parts
from app.runtime.downloads import StoredFile, serve_file
from app.security import CurrentPrincipal, Principal

router = APIRouter(prefix=JOBS_PREFIX, tags=["report-jobs"])


async def _delivery(
    settings: Settings, principal: Principal, body: JobCreate
) -> DeliveryConfig | None:
    return await deliveries.on_demand_config(
        settings,
        user_id=principal.user_id,
        email=principal.email,
        notify_email=bool(body.notify and body.notify.email),
        webhook_url=body.webhook_url,
    )


async def _check_body(request: Request, principal: Principal, body: JobCreate) -> None:
    """What `create_job` checks before it stores the job, every problem in one 422 (run on
    the parts of a body whose shape failed: `app.runtime.body_checks`)."""
    settings: Settings = request.app.state.settings
    problems = Problems()
    with problems.collect():
        await _delivery(settings, principal, body)
    with problems.collect():
        asked = await job_bodies.body_request(principal, body, options=body.file_options())
        with job_bodies.body_fields(body):
            await prepare(settings, principal, asked)
    problems.raise_if_any()


@router.post(
    "",
    name="jobs_create",
    summary="Run a report",
    status_code=202,
    response_model=JobOut,
    responses={**ACCEPTED, **REPLAYED, **problem_responses(401, 403, 404, 409, 413, 422, 429, 503)},
)
@checks_body_parts(
    BodyParts(
        JobCreate,
        _check_body,
        depends=job_bodies.JOB_BODY_DEPENDS,
        stand_ins=job_bodies.JOB_BODY_STAND_INS,
    )
)
async def create_job(
    body: JobCreate,
    response: Response,
    resources: ResourcesDep,
    principal: CurrentPrincipal,
    request_id: RequestId,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    delivery = await _delivery(resources.settings, principal, body)
    asked = await job_bodies.body_request(
        principal,
        body,
        options=body.file_options(),
        idempotency_key=idempotency_key,
        request_id=request_id,
        delivery=delivery,
    )
    with job_bodies.body_fields(body):
        submission = await submit(resources, principal, asked)
    await record_run(
        AuditAction.JOB_CREATED, principal, submission.job, replayed=submission.replayed
    )
    return accepted(response, submission)


@router.get(
    "",
    name="jobs_list",
    summary="List report jobs (your own; admins may filter by user)",
    description=(
        "Your jobs (admins: everyone's, or one user's with `userId`), filtered and sorted, in "
        "pages: pass `nextCursor` back as `cursor` with the same filters and sort. `total` "
        "counts the matching jobs when that is cheap, else it is null and `totalAtLeast` a "
        "lower bound."
    ),
    response_model=Page[JobOut],
    responses=problem_responses(401, 403, 422),
)
async def list_jobs(
    principal: CurrentPrincipal,
    status: JobStatus | None = None,
    report_type: Annotated[str | None, Query(alias="reportType", max_length=64)] = None,
    format: Annotated[str | None, Query(max_length=8)] = None,
    created_from: Annotated[BoundedDateTime | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[BoundedDateTime | None, Query(alias="createdTo")] = None,
    user_id: Annotated[str | None, Query(alias="userId", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[str, JOB_SORTS.query()] = JOB_SORTS.default,
) -> Page[JobOut]:
    filters = JobFilters(
        status=status,
        report_type=report_type,
        format=format,
        created_from=created_from,
        created_to=created_to,
        user_id=user_id,
    )
    listed = await service.list_jobs(principal, filters, JOB_SORTS.request(sort, cursor, limit))
    return listed.page(JobOut.from_document)


@router.get(
    "/{job_id}",
    name="jobs_get",
    summary="A report job: status, progress, result or error",
    response_model=JobOut,
    responses=problem_responses(401, 404),
)
async def get_job(job_id: str, principal: CurrentPrincipal) -> JobOut:
    return JobOut.from_document(await service.get_job(principal, job_id))


@router.post(
    "/{job_id}/cancel",
    name="jobs_cancel",
    summary="Cancel a queued or running job (running jobs stop within seconds)",
    response_model=JobOut,
    status_code=202,
    responses=problem_responses(401, 404, 409),
)
async def cancel_job(job_id: str, principal: CurrentPrincipal) -> JobOut:
    job = await service.cancel_job(principal, job_id)
    await record_job(AuditAction.JOB_CANCELLED, principal, job)
    return JobOut.from_document(job)


@router.post(
    "/{job_id}/retry",
    name="jobs_retry",
    summary="Run a failed or cancelled job again (a new job pointing back to it)",
    response_model=JobOut,
    status_code=202,
    responses={**ACCEPTED, **problem_responses(401, 403, 404, 409, 422, 429)},
)
async def retry_job(
    job_id: str, response: Response, resources: ResourcesDep, principal: CurrentPrincipal
) -> JobOut:
    submission = await service.retry_job(resources, principal, job_id)
    await record_job(AuditAction.JOB_RETRIED, principal, submission.job)
    return accepted(response, submission)


@router.get(
    "/{job_id}/download",
    name="jobs_download",
    summary="Download the report file",
    description=(
        "S3 storage: a 302 to a presigned URL valid a few minutes (S3 answers `Range` itself). "
        "Local storage: the file, streamed, with Content-Disposition; `Range` (one range) is a "
        "206 with those bytes, `If-Range` with the ETag or Last-Modified resumes only the same "
        "file, and CSV / JSON Lines come gzip-compressed with `Accept-Encoding: gzip` (a range "
        "never is). 409 before completion, 410 once expired, 416 for a range past the end. "
        "Access is checked again at download time."
    ),
    response_class=Response,
    responses={
        **file_response(),
        302: {
            "description": (
                "S3 storage: a redirect to a short-lived presigned URL, which serves the file as "
                f"its format's type ({served_as()}) with the same Content-Disposition"
            ),
            "headers": {
                "Location": {
                    "description": "The presigned URL",
                    "schema": {"type": "string", "format": "uri"},
                }
            },
        },
        **problem_responses(401, 403, 404, 409, 410, 416),
    },
)
async def download(
    job_id: str, request: Request, resources: ResourcesDep, principal: CurrentPrincipal
) -> Response:
    prepared = await service.prepare_download(resources, principal, job_id)
    await record_job(AuditAction.JOB_DOWNLOADED, principal, prepared.job)
    result = prepared.job.result
    assert result is not None
    if prepared.url:
        return RedirectResponse(
            prepared.url, status_code=302, headers={"Cache-Control": "no-store"}
        )
    file = StoredFile(
        key=result.storage_key,
        file_name=result.file_name,
        content_type=result.content_type,
        size_bytes=result.size_bytes,
        checksum_sha256=result.checksum_sha256,
        modified_at=prepared.job.finished_at,
        compressible=compresses(prepared.job.format),
    )
    try:
        return await serve_file(resources.storage, request.headers, file)
    except FileNotFoundError as exc:  # removed between the check and now
        raise Gone(
            "The file of this report is no longer available; run it again.",
            code="job-file-missing",
        ) from exc
