"""Templates API (API-ISS-031): 7 endpoints under /api/v1/reports/templates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response

from app.audit import AuditAction, record, record_run
from app.common.http import IdempotencyKey, RequestId, with_headers
from app.common.schemas import Page
from app.deps import ResourcesDep, SettingsDep
from app.errors import problem_responses
from app.reports.jobs.responses import ACCEPTED, REPLAYED, accepted
from app.reports.jobs.schemas import JobOut
from app.reports.schedules.in_use import refuse_template_in_use
from app.reports.templates import service, versions
from app.reports.templates.models import TEMPLATE_SORTS, VERSION_SORTS, ReportTemplate
from app.reports.templates.schemas import (
    TemplateCreate,
    TemplateDuplicate,
    TemplateOut,
    TemplateRun,
    TemplateUpdate,
    TemplateVersionOut,
)
from app.reports.templates.service import TEMPLATE_DEPENDS, TEMPLATE_STAND_INS
from app.runtime.body_checks import BodyParts, checks_body_parts
from app.security import CurrentPrincipal, Principal

router = APIRouter(prefix="/api/v1/reports/templates", tags=["report-templates"])

PREFIX = "/api/v1/reports/templates"


def _out(
    template: ReportTemplate, principal: CurrentPrincipal, *, latest_version: int | None = None
) -> TemplateOut:
    can_edit = service.can_edit(template, principal)
    out = TemplateOut.from_document(template, can_edit=can_edit, latest_version=latest_version)
    if not can_edit:
        # Another user's departments are not the caller's business (a manager of one
        # department must not learn the ids of others): only the ones they share show.
        mine = set(principal.department_ids)
        out.owner_department_ids = [d for d in out.owner_department_ids if d in mine]
    return out


async def _check_create(request: Request, principal: Principal, body: TemplateCreate) -> None:
    await service.check_create(request.app.state.settings, principal, body)


async def _check_update(request: Request, principal: Principal, body: TemplateUpdate) -> None:
    await service.check_update(
        request.app.state.settings,
        principal,
        request.path_params["template_id"],
        body,
        request.headers.get("If-Match"),
    )


# The checks of each endpoint, run on the parts of a body whose shape failed
# (`app.runtime.body_checks`).
CREATE_PARTS = BodyParts(
    TemplateCreate, _check_create, depends=TEMPLATE_DEPENDS, stand_ins=TEMPLATE_STAND_INS
)
UPDATE_PARTS = BodyParts(TemplateUpdate, _check_update, depends=TEMPLATE_DEPENDS)


@router.post(
    "",
    name="templates_create",
    summary="Save a report template",
    status_code=201,
    response_model=TemplateOut,
    responses=with_headers({201: ["Location", "ETag"]}, problem_responses(401, 403, 422)),
)
@checks_body_parts(CREATE_PARTS)
async def create_template(
    body: TemplateCreate, response: Response, settings: SettingsDep, principal: CurrentPrincipal
) -> TemplateOut:
    template = await service.create_template(settings, principal, body)
    await record(AuditAction.TEMPLATE_CREATED, principal, object_id=template.id)
    response.headers["Location"] = f"{PREFIX}/{template.id}"
    response.headers["ETag"] = service.etag(template)
    return _out(template, principal)


@router.get(
    "",
    name="templates_list",
    summary="List the templates you may see",
    description=(
        "Your own templates, those shared with the organization and those shared with a "
        "department you belong to (admins see all; learners only their own). Newest first "
        "unless `sort` says otherwise; archived templates only with `archived=true`. Pages: "
        "pass `nextCursor` back as `cursor` with the same filters and sort; `total` counts the "
        "matching templates when that is cheap, else it is null and `totalAtLeast` a lower "
        "bound."
    ),
    response_model=Page[TemplateOut],
    responses=problem_responses(401, 422),
)
async def list_templates(
    principal: CurrentPrincipal,
    report_type: Annotated[str | None, Query(alias="reportType", max_length=64)] = None,
    visibility: Annotated[str | None, Query(pattern="^(private|department|organization)$")] = None,
    owner: Annotated[
        str | None, Query(max_length=64, description="Owner's user id; `me` for yours")
    ] = None,
    q: Annotated[str | None, Query(max_length=100, description="Search in the name")] = None,
    archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[str, TEMPLATE_SORTS.query()] = TEMPLATE_SORTS.default,
) -> Page[TemplateOut]:
    listed = await service.list_templates(
        principal,
        report_type=report_type,
        visibility=visibility,
        owner=principal.user_id if owner == "me" else owner,
        q=q,
        archived=archived,
        page=TEMPLATE_SORTS.request(sort, cursor, limit),
    )
    return listed.page(lambda t: _out(t, principal))


@router.get(
    "/{template_id}",
    name="templates_get",
    summary="A template (ETag carries its version), or one of its versions",
    description=(
        "The template as it is now; with `?version=N` as it was at version N (`version` is N, "
        "`latestVersion` the newest), or 404 `template-version-not-found` when it has no such "
        "version."
    ),
    response_model=TemplateOut,
    responses=with_headers({200: ["ETag"]}, problem_responses(401, 404, 422)),
)
async def get_template(
    template_id: str,
    response: Response,
    principal: CurrentPrincipal,
    version: Annotated[
        int | None, Query(ge=1, description="Show this version instead of the newest")
    ] = None,
) -> TemplateOut:
    if version is None:
        template = await service.get_visible(principal, template_id)
        response.headers["ETag"] = service.etag(template)
        return _out(template, principal)
    current, kept = await versions.get_version(principal, template_id, version)
    shown = versions.as_of(current, kept)
    response.headers["ETag"] = service.etag(shown)
    return _out(shown, principal, latest_version=current.version)


@router.get(
    "/{template_id}/versions",
    name="templates_versions_list",
    summary="The versions of a template, newest first",
    description=(
        "Every change of a template keeps a version: its content, who made it, when, and which "
        "fields changed. Anyone who may see the template may see its versions. Pages like every "
        "list (`cursor`, `total`)."
    ),
    response_model=Page[TemplateVersionOut],
    responses=problem_responses(401, 404, 422),
)
async def list_versions(
    template_id: str,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[str, VERSION_SORTS.query()] = VERSION_SORTS.default,
) -> Page[TemplateVersionOut]:
    listed = await versions.list_versions(
        principal, template_id, VERSION_SORTS.request(sort, cursor, limit)
    )
    return listed.page(TemplateVersionOut.from_document)


@router.get(
    "/{template_id}/versions/{version}",
    name="templates_versions_get",
    summary="One version of a template",
    description="404 `template-version-not-found` when the template has no such version.",
    response_model=TemplateVersionOut,
    responses=problem_responses(401, 404, 422),
)
async def get_version(
    template_id: str,
    version: Annotated[int, Path(ge=1, description="The version number")],
    principal: CurrentPrincipal,
) -> TemplateVersionOut:
    _, kept = await versions.get_version(principal, template_id, version)
    return TemplateVersionOut.from_document(kept)


@router.patch(
    "/{template_id}",
    name="templates_update",
    summary="Change a template (owner or admin; optimistic concurrency)",
    description=(
        'Send `If-Match: "<version>"` (the ETag of your copy) or `version` in the body; if the '
        "template changed since, the answer is 412 with the current version. Without either, "
        "the change is always accepted and applies to the current version, whatever it is "
        "(last writer wins; never 412). Every change increments `version` and keeps the new "
        "version (`GET .../versions`); to restore an old one, send its content."
    ),
    response_model=TemplateOut,
    responses=with_headers(
        {200: ["ETag"], 412: ["ETag"]}, problem_responses(401, 403, 404, 412, 422)
    ),
)
@checks_body_parts(UPDATE_PARTS)
async def update_template(
    template_id: str,
    body: TemplateUpdate,
    response: Response,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=50,
            description='e.g. "3"; without it (or `*`) the last writer wins',
        ),
    ] = None,
) -> TemplateOut:
    template = await service.update_template(settings, principal, template_id, body, if_match)
    await record(
        AuditAction.TEMPLATE_UPDATED,
        principal,
        object_id=template.id,
        details={"version": template.version},
    )
    response.headers["ETag"] = service.etag(template)
    return _out(template, principal)


@router.delete(
    "/{template_id}",
    name="templates_delete",
    summary="Delete a template (owner or admin)",
    description=(
        "409 while a schedule that is not ended uses it (following its newest version or "
        "pinned to one); the problem names them. Its versions are deleted with it."
    ),
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 409),
)
async def delete_template(template_id: str, principal: CurrentPrincipal) -> Response:
    await service.delete_template(principal, template_id, in_use=refuse_template_in_use)
    await record(AuditAction.TEMPLATE_DELETED, principal, object_id=template_id)
    return Response(status_code=204)


@router.post(
    "/{template_id}/duplicate",
    name="templates_duplicate",
    summary="Copy a template you can see into a private template of your own",
    status_code=201,
    response_model=TemplateOut,
    responses=with_headers({201: ["Location", "ETag"]}, problem_responses(401, 404, 422)),
)
async def duplicate_template(
    template_id: str,
    response: Response,
    principal: CurrentPrincipal,
    body: Annotated[TemplateDuplicate | None, Body()] = None,
) -> TemplateOut:
    template = await service.duplicate_template(principal, template_id, body.name if body else None)
    await record(AuditAction.TEMPLATE_DUPLICATED, principal, object_id=template.id)
    response.headers["Location"] = f"{PREFIX}/{template.id}"
    response.headers["ETag"] = service.etag(template)
    return _out(template, principal)


@router.post(
    "/{template_id}/run",
    name="templates_run",
    summary="Run a template (creates a job with your data scope)",
    description=(
        "Runs with the caller's role and data scope, never the author's. Optional overrides "
        "for this run only. Answers 202 with the job and its Location (200 with "
        "`Idempotent-Replayed: true` when an Idempotency-Key replays an earlier run)."
    ),
    status_code=202,
    response_model=JobOut,
    responses={**ACCEPTED, **REPLAYED, **problem_responses(401, 403, 404, 409, 422, 429, 503)},
)
async def run_template(
    template_id: str,
    response: Response,
    resources: ResourcesDep,
    principal: CurrentPrincipal,
    request_id: RequestId,
    idempotency_key: IdempotencyKey = None,
    body: Annotated[TemplateRun | None, Body()] = None,
) -> JobOut:
    submission = await service.run_template(
        resources,
        principal,
        template_id,
        body,
        idempotency_key=idempotency_key,
        request_id=request_id,
    )
    await record_run(
        AuditAction.TEMPLATE_RUN, principal, submission.job, replayed=submission.replayed
    )
    return accepted(response, submission)
