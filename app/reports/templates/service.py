"""The rules of report templates: who sees, changes, shares and runs them. Templates know
jobs and the request road but not schedules: what still needs a template (a schedule using
it) is checked by the `in_use` function `delete_template` is handed by the router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from beanie import PydanticObjectId

from app.audit.context import note_hidden
from app.common.ids import parse_id
from app.common.pagination import Listed, PageRequest
from app.config import Settings
from app.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Problems,
    ValidationFailed,
)
from app.reports.deliveries.models import DeliveryConfig
from app.reports.jobs.models import FileOptions
from app.reports.jobs.requests import (
    ReportRequest,
    Submission,
    check,
    prefixed_fields,
    requester_of,
    submit,
)
from app.reports.templates import repository
from app.reports.templates.models import Editor, ReportTemplate, Visibility
from app.reports.templates.schemas import TemplateCreate, TemplateRun, TemplateUpdate
from app.runtime.resources import Resources
from app.security import Principal, Role

# Raises (a 409 naming the users) when something still needs the template.
InUseCheck = Callable[[Principal, ReportTemplate], Awaitable[None]]


def parse_template_id(value: str) -> PydanticObjectId:
    return parse_id(value, "template", code="template-not-found")


def etag(template: ReportTemplate) -> str:
    return f'"{template.version}"'


def parse_if_match(value: str | None) -> int | None:
    """`"3"`, `W/"3"` or `3` -> 3; `*` or absent -> None (no precondition)."""
    if value is None:
        return None
    text = value.strip()
    if text == "*":
        return None
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not (text.isascii() and text.isdigit()):
        raise ValidationFailed.one(
            "header.If-Match", 'must be the template version as an ETag, e.g. "3"'
        )
    return int(text)


def editor_of(principal: Principal) -> Editor:
    return Editor(user_id=principal.user_id, name=principal.name)


def can_edit(template: ReportTemplate, principal: Principal) -> bool:
    return principal.is_admin or template.owner.user_id == principal.user_id


async def get_visible(principal: Principal, template_id: str) -> ReportTemplate:
    """The template, or 404 when it does not exist or the caller may not see it."""
    template = await repository.get(parse_template_id(template_id))
    if template is None or not repository.is_visible(template, principal):
        if template is not None:
            note_hidden("template", template.id)  # the same 404, recorded as a probe
        raise NotFound(f"No template with id {template_id!r}.", code="template-not-found")
    return template


async def _get_editable(principal: Principal, template_id: str) -> ReportTemplate:
    template = await get_visible(principal, template_id)
    if not can_edit(template, principal):
        raise Forbidden(
            "Only the template's owner or an admin may change or delete it; "
            "duplicate it to make your own copy.",
            code="template-not-owned",
        )
    return template


PUBLISHERS = (Role.ADMIN, Role.MANAGER)  # who may share a template beyond themselves


def _check_visibility(principal: Principal, visibility: str, owner_departments: list[str]) -> None:
    """A template shared with a department or the organization is published by a manager or
    an admin (403 naming the field otherwise); `department` needs the owner's departments."""
    if visibility == Visibility.PRIVATE:
        return
    if principal.role not in PUBLISHERS:
        raise Forbidden(
            f"Only managers and admins may share a template with the {visibility}; "
            "keep it private.",
            code="template-visibility-not-allowed",
            errors=[
                FieldError(
                    field="body.visibility",
                    message=f"a {principal.role.value} may not publish a template to the "
                    f"{visibility}",
                    type="template-visibility-not-allowed",
                    allowed=[Visibility.PRIVATE.value],
                )
            ],
        )
    if visibility == Visibility.DEPARTMENT and not owner_departments:
        raise ValidationFailed.one(
            "body.visibility",
            "the owner belongs to no department to share with; use private or organization",
            allowed=[Visibility.PRIVATE.value, Visibility.ORGANIZATION.value],
        )


# Which fields the checks read together (`app.runtime.body_checks`): the report type decides
# what the format, parameters and columns may be; the columns depend on the shape the
# parameters select.
TEMPLATE_DEPENDS: dict[str, tuple[str, ...]] = {
    "format": ("report_type",),
    "parameters": ("report_type",),
    "columns": ("report_type", "parameters"),
}
# What a create set aside for its shape takes instead (no check faults them).
TEMPLATE_STAND_INS = {"name": "-", "format": "csv"}


async def create_template(
    settings: Settings, principal: Principal, body: TemplateCreate
) -> ReportTemplate:
    await check_create(settings, principal, body)
    template = ReportTemplate(
        name=body.name,
        description=body.description,
        report_type=body.report_type,
        format=body.format,
        parameters=body.parameters,
        columns=body.columns,
        locale=body.locale,
        visibility=body.visibility,
        owner=requester_of(principal),
    )
    return await repository.insert(template, editor_of(principal))


async def check_create(settings: Settings, principal: Principal, body: TemplateCreate) -> None:
    """`create_template`'s checks, nothing stored: every problem of the body in one 422."""
    problems = Problems()
    with problems.collect():
        await check(
            settings,
            principal,
            body.report_type,
            body.format,
            body.parameters,
            columns=body.columns,
        )
    with problems.collect():
        _check_visibility(principal, body.visibility, list(principal.department_ids))
    problems.raise_if_any()


async def list_templates(
    principal: Principal,
    *,
    report_type: str | None,
    visibility: str | None,
    owner: str | None,
    q: str | None,
    archived: bool,
    page: PageRequest,
) -> Listed[ReportTemplate]:
    query = repository.list_filter(
        principal,
        report_type=report_type,
        visibility=visibility,
        owner=owner,
        q=q,
        archived=archived,
    )
    return await repository.find_page(query, page)


# The parts of a template that make its report request, checked together.
REQUEST_FIELDS = frozenset({"report_type", "format", "parameters", "columns"})


async def update_template(
    settings: Settings,
    principal: Principal,
    template_id: str,
    body: TemplateUpdate,
    if_match: str | None,
) -> ReportTemplate:
    template = await _get_editable(principal, template_id)
    expected, changes = await _examine_update(settings, principal, template, body, if_match)
    if not changes:
        return template
    if REQUEST_FIELDS & changes.keys() and expected is None:
        # Last writer wins: it writes the whole request it checked, so a concurrent change of
        # another part of it cannot leave an unchecked mix behind.
        for key in REQUEST_FIELDS:
            changes.setdefault(key, getattr(template, key))
    # With a precondition, only the version it names is changed (412 otherwise); without one
    # the change applies to the current version, whatever it is: never a 412. The new version
    # is kept in the same transaction.
    assert template.id is not None
    outcome = await repository.change(template.id, expected, changes, editor_of(principal))
    if outcome.template is None:
        raise NotFound(f"No template with id {template_id!r}.", code="template-not-found")
    if outcome.stale:
        assert expected is not None
        raise _stale(outcome.template, expected)
    return outcome.template


async def check_update(
    settings: Settings,
    principal: Principal,
    template_id: str,
    body: TemplateUpdate,
    if_match: str | None,
) -> None:
    """`update_template`'s checks, nothing stored."""
    template = await _get_editable(principal, template_id)
    await _examine_update(settings, principal, template, body, if_match)


async def _examine_update(
    settings: Settings,
    principal: Principal,
    template: ReportTemplate,
    body: TemplateUpdate,
    if_match: str | None,
) -> tuple[int | None, dict[str, Any]]:
    """The version a change is based on (None: the current one, whatever it is) and what it
    changes, checked: a 412 when the template moved on, else every problem in one 422."""
    expected = parse_if_match(if_match)
    if expected is not None and body.version is not None and expected != body.version:
        raise ValidationFailed.one(
            "body.version", f"disagrees with the If-Match header ({expected})"
        )
    if expected is None:
        expected = body.version
    if expected is not None and expected != template.version:
        raise _stale(template, expected)

    sent = body.model_dump(exclude_unset=True, exclude={"version"})
    problems = Problems()  # every problem of the change in one 422
    if "name" in sent and sent["name"] is None:
        problems.add(FieldError(field="body.name", message="must not be null"))
    for key in ("name", "report_type", "format", "parameters", "visibility", "archived"):
        if key in sent and sent[key] is None:
            sent.pop(key)
    changes = {k: v for k, v in sent.items() if getattr(template, k) != v}
    if REQUEST_FIELDS & changes.keys():
        with problems.collect():
            await check(
                settings,
                principal,
                changes.get("report_type", template.report_type),
                changes.get("format", template.format),
                changes.get("parameters", template.parameters),
                role="report_type" in changes,
                columns=changes.get("columns", template.columns),
            )
    if "visibility" in changes:
        with problems.collect():
            _check_visibility(principal, changes["visibility"], template.owner.department_ids)
    problems.raise_if_any()
    return expected, changes


def _stale(current: ReportTemplate, expected: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"The template is at version {current.version}, not {expected}: someone changed it "
        "since you read it. Reload it and apply your change again.",
        code="template-version-mismatch",
        headers={"ETag": etag(current)},
        extra={"currentVersion": current.version},
    )


async def delete_template(principal: Principal, template_id: str, in_use: InUseCheck) -> None:
    template = await _get_editable(principal, template_id)
    assert template.id is not None
    await in_use(principal, template)
    await repository.delete(template.id)


async def duplicate_template(
    principal: Principal, template_id: str, name: str | None
) -> ReportTemplate:
    source = await get_visible(principal, template_id)
    copy = ReportTemplate(
        name=name or f"Copy of {source.name}"[:200],
        description=source.description,
        report_type=source.report_type,
        format=source.format,
        parameters=dict(source.parameters),
        columns=source.columns,
        locale=source.locale,
        visibility=Visibility.PRIVATE.value,
        owner=requester_of(principal),
    )
    return await repository.insert(copy, editor_of(principal))


def effective_request(
    template: ReportTemplate, parameters: dict[str, Any] | None, fmt: str | None
) -> tuple[str, dict[str, Any]]:
    """The format and parameters of a run: overrides merged over the template's (top-level
    keys replace the template's)."""
    return fmt or template.format, {**template.parameters, **(parameters or {})}


async def run_template(
    resources: Resources,
    principal: Principal,
    template_id: str,
    body: TemplateRun | None,
    *,
    idempotency_key: str | None,
    request_id: str | None,
    delivery: DeliveryConfig | None = None,
    options: FileOptions | None = None,
) -> Submission:
    """Runs a template as the caller: the caller's role and data scope apply, never the
    author's. `delivery`: who is told when it ends (POST /jobs `notify` / `webhookUrl`);
    `options`: the file options of POST /jobs (the defaults are left out of the request)."""
    request = await template_request(
        principal,
        template_id,
        body,
        idempotency_key=idempotency_key,
        request_id=request_id,
        delivery=delivery,
        options=options,
    )
    with prefixed_fields("body."):
        return await submit(resources, principal, request)


async def template_request(
    principal: Principal,
    template_id: str,
    body: TemplateRun | None,
    *,
    idempotency_key: str | None = None,
    request_id: str | None = None,
    delivery: DeliveryConfig | None = None,
    options: FileOptions | None = None,
) -> ReportRequest:
    """What running a template visible to the caller asks for: its report type, its format
    and parameters with the overrides merged over them (an archived template is not run)."""
    template = await get_visible(principal, template_id)
    if template.archived:
        raise Conflict(
            "The template is archived; unarchive it (PATCH archived=false) to run it.",
            code="template-archived",
        )
    fmt, parameters = effective_request(
        template, body.parameters if body else None, body.format if body else None
    )
    return ReportRequest(
        report_type=template.report_type,
        format=fmt,
        parameters=parameters,
        options=options if options is not None and options != FileOptions() else None,
        locale=(body.locale if body else None) or template.locale,
        columns=_columns_of((body.columns if body else None) or template.columns),
        template_id=template.id,
        template_version=template.version,
        idempotency_key=idempotency_key,
        request_id=request_id,
        delivery=delivery,
    )


def _columns_of(keys: list[str] | None) -> tuple[str, ...] | None:
    return tuple(keys) if keys is not None else None
