"""Report data as JSON (issue 24): `POST /api/v1/reports/preview` and
`GET /api/v1/reports/jobs/{id}/rows`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.audit import AuditAction, record_job
from app.common.time import utcnow
from app.deps import ResourcesDep
from app.errors import problem_responses
from app.reports.jobs.schemas import JobCreate
from app.reports.previews import rows, service
from app.reports.previews.schemas import PreviewOut, RowsPage
from app.reports.templates.job_bodies import JOB_BODY_DEPENDS, JOB_BODY_STAND_INS
from app.runtime.body_checks import BodyParts, checks_body_parts
from app.security import CurrentPrincipal, Principal

router = APIRouter(prefix="/api/v1/reports")

_RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds until a preview is allowed again",
        "schema": {"type": "integer"},
    }
}


async def _check_body(request: Request, principal: Principal, body: JobCreate) -> None:
    """The preview's checks of its body (the request road, nothing read), run on the parts of a
    body whose shape failed (`app.runtime.body_checks`)."""
    await service.check_request(request.app.state.settings, principal, body, utcnow())


@router.post(
    "/preview",
    name="reports_preview",
    tags=["report-previews"],
    summary="Preview a report: a page of its rows, its summary and row count, at once",
    description=(
        "Takes what `POST /api/v1/reports/jobs` takes (a report type, format and parameters, "
        "or a `templateId` with overrides; `notify` and `webhookUrl` are accepted and ignored) "
        "and answers with the rows and figures the file of that request would hold, read "
        "through the same road (validation, role, data scope) and the same read. The rows come "
        "in the report's order or in `sort`; `nextCursor`, sent back as `cursor` with the same "
        "body and sort, reads on. A report whose whole read does not fit in the preview's time "
        "budget (`PREVIEW_BUDGET_MS`) is refused with 422 `preview-too-large`, which carries "
        "`estimatedRows`, `rowsRead`, `budgetMs` and `narrowBy` (the parameters that would "
        "narrow it). At most `PREVIEW_RATE_PER_MINUTE` previews a minute per user (429 with "
        "`Retry-After`). Every preview is audited (`report.previewed`)."
    ),
    response_model=PreviewOut,
    responses={
        **problem_responses(401, 403, 404, 409, 422, 503),
        429: {**problem_responses(429)[429], "headers": _RETRY_AFTER},
    },
)
@checks_body_parts(
    BodyParts(JobCreate, _check_body, depends=JOB_BODY_DEPENDS, stand_ins=JOB_BODY_STAND_INS)
)
async def preview(
    body: JobCreate,
    resources: ResourcesDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT, description="Rows per page")] = (
        service.DEFAULT_LIMIT
    ),
    sort: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Up to three column keys, comma-separated, `-` for descending "
            "(`-score,learnerName`); ties keep the report's order. Omitted: the report's order",
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> PreviewOut:
    return await service.preview(
        resources, principal, body, service.PageAsk(limit=limit, sort=sort, cursor=cursor)
    )


@router.get(
    "/jobs/{job_id}/rows",
    name="jobs_rows",
    tags=["report-jobs"],
    summary="A page of a completed csv or json job's rows, as JSON",
    description=(
        "Reads the stored file at any depth in constant time (a ranged read from the row index "
        "stored beside it): `nextCursor` and `previousCursor` page forwards and backwards "
        "without a gap or a repeat. Rows are objects keyed by column key with typed values "
        "(a CSV's cells are read back as the JSON Lines file would hold them). The same access "
        "as the download: 409 before completion or for another format, 410 once expired, the "
        "caller's data scope checked again. Audited (`job.rows-read`)."
    ),
    response_model=RowsPage,
    responses=problem_responses(401, 403, 404, 409, 410, 422),
)
async def job_rows(
    job_id: str,
    resources: ResourcesDep,
    principal: CurrentPrincipal,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=rows.MAX_LIMIT, description="Rows per page")] = (
        rows.DEFAULT_LIMIT
    ),
) -> RowsPage:
    page, job = await rows.job_rows(resources, principal, job_id, cursor, limit)
    await record_job(
        AuditAction.JOB_ROWS_READ, principal, job, firstRow=page.first_row, rows=len(page.rows)
    )
    return page
