"""The rules of report schedules: ownership, create / change / delete, pause / resume, run-now
and history. When a schedule runs is `timing.py`; what a run asks for and as whom is
`runner.py`."""

from __future__ import annotations

from typing import Any

import structlog
from beanie import PydanticObjectId
from bson import ObjectId

from app.audit.context import note_hidden
from app.common.ids import parse_id
from app.common.pagination import Listed, PageRequest
from app.common.time import utcnow
from app.config import Settings
from app.errors import Conflict, FieldError, NotFound, Problems, ValidationFailed
from app.reports.deliveries.schemas import WebhookOut
from app.reports.jobs.models import ReportJob
from app.reports.jobs.requests import Submission, requester_of
from app.reports.schedules import repository, runner
from app.reports.schedules.alerts.checks import alert_changes
from app.reports.schedules.alerts.models import AlertConfig
from app.reports.schedules.changes.checks import changes_fields, states_reset
from app.reports.schedules.delivery import DeliveryChanges, create_endpoints, delivery_changes
from app.reports.schedules.models import ReportSchedule, ScheduleStatus
from app.reports.schedules.recurrence import next_run
from app.reports.schedules.schemas import ScheduleCreate, ScheduleOut, ScheduleUpdate
from app.reports.schedules.timing import (
    TIMING_FIELDS,
    body_field,
    build_timing,
    first_run,
    preview,
    updated_timing,
)
from app.reports.templates import repository as template_store
from app.reports.templates import service as templates
from app.reports.templates import versions as template_versions
from app.reports.templates.models import ReportTemplate, ReportTemplateVersion
from app.runtime.resources import Resources
from app.security import Principal, resolve_scope

log = structlog.get_logger(__name__)


def parse_schedule_id(value: str) -> PydanticObjectId:
    return parse_id(value, "schedule", code="schedule-not-found")


def _visible(schedule: ReportSchedule | None, principal: Principal) -> bool:
    return schedule is not None and (
        principal.is_admin or schedule.owner.user_id == principal.user_id
    )


async def get_visible(principal: Principal, schedule_id: str) -> ReportSchedule:
    schedule = await repository.get(parse_schedule_id(schedule_id))
    if schedule is None or not _visible(schedule, principal):
        if schedule is not None:
            note_hidden("schedule", schedule.id)  # the same 404, recorded as a probe
        raise NotFound(f"No schedule with id {schedule_id!r}.", code="schedule-not-found")
    return schedule


async def _template_of(principal: Principal, body: ScheduleCreate) -> ReportTemplate:
    assert body.template_id is not None
    try:
        template = await templates.get_visible(principal, body.template_id)
    except NotFound:
        raise ValidationFailed.one(
            "body.templateId", "no template with this id is visible to you"
        ) from None
    if template.archived:
        raise ValidationFailed.one("body.templateId", "the template is archived")
    return template


VERSION_FIELD = "body.templateVersion"


async def _pinned(template: ReportTemplate, number: int) -> ReportTemplateVersion:
    """The template's version `number`, or a 422 naming `templateVersion`."""
    assert template.id is not None
    version = await template_versions.find_version(template.id, number)
    if version is None:
        raise ValidationFailed.one(
            VERSION_FIELD,
            f"the template {template.name!r} has no version {number} (its latest is "
            f"{template.version})",
            type="template-version-unknown",
        )
    return version


async def _version_changes(schedule: ReportSchedule, number: int | None) -> dict[str, Any]:
    """Pinning the schedule's template at version `number`, or following its newest (None);
    the report type follows the version run."""
    if schedule.template_id is None:
        if number is None:
            return {}
        raise ValidationFailed.one(VERSION_FIELD, "only for a schedule that runs a template")
    template = await template_store.get(schedule.template_id)
    if template is None:
        raise ValidationFailed.one(VERSION_FIELD, "the schedule's template no longer exists")
    content = template if number is None else await _pinned(template, number)
    return {"template_version": number, "report_type": content.report_type}


def schedule_out(schedule: ReportSchedule, webhooks: list[WebhookOut] | None = None) -> ScheduleOut:
    """The schedule as the API shows it. One stored under older, looser rules (e.g. a date far
    beyond what run times can reach) is shown with an error note instead of failing the list,
    the get or the pause that answers it."""
    try:
        return ScheduleOut.from_document(schedule, preview(schedule), webhooks)
    except (ValueError, OverflowError, ArithmeticError) as exc:
        log.warning("schedule_not_previewable", schedule_id=str(schedule.id), error=str(exc)[:200])
        return ScheduleOut.from_document(
            schedule,
            [],
            webhooks,
            error="Its timing is not valid under the current rules "
            f"({str(exc)[:200]}); edit or delete it.",
        )


async def create_schedule(
    settings: Settings, principal: Principal, body: ScheduleCreate
) -> tuple[ReportSchedule, dict[PydanticObjectId, str]]:
    """The new schedule and the signing secrets of its new webhook endpoints (shown once).
    Every problem of the request is named in one 422: timing, template or report type,
    parameters, data scope, recipients, webhooks."""
    problems = Problems()
    timing: dict[str, Any] = {"frequency": body.frequency, "timezone": body.timezone}
    with problems.collect():
        timing = build_timing({n: getattr(body, n) for n in TIMING_FIELDS}, body.model_fields_set)
    report_type, template_id = body.report_type, None
    if body.template_id is not None:
        if body.report_type is not None:
            problems.add(
                FieldError(
                    field=body_field("report_type"),
                    message="not allowed with templateId (the template decides it)",
                )
            )
        with problems.collect():
            template = await _template_of(principal, body)
            report_type, template_id = template.report_type, template.id
            if body.template_version is not None:
                report_type = (await _pinned(template, body.template_version)).report_type
    else:
        if body.template_version is not None:
            problems.add(FieldError(field=VERSION_FIELD, message="only with templateId"))
        for name in ("report_type", "format"):
            if getattr(body, name) is None:
                problems.add(
                    FieldError(
                        field=body_field(name),
                        message="required without templateId",
                        type="missing",
                    )
                )
    schedule = None
    if report_type is not None and (template_id is not None or body.template_id is None):
        schedule = ReportSchedule(
            name=body.name,
            description=body.description,
            template_id=template_id,
            template_version=body.template_version,
            report_type=report_type,
            parameters=body.parameters or {},
            format=body.format,
            locale=body.locale,
            columns=body.columns,
            owner=requester_of(principal),
            missed_run_policy=body.missed_run_policy,
            **timing,
        )
        # A pinned version that does not exist leaves nothing to check the run against.
        pinned_missing = any(e.field == VERSION_FIELD for e in problems.errors)
        if (template_id is not None or body.format is not None) and not pinned_missing:
            with problems.collect():
                await runner.check_runnable(settings, schedule, principal)
    delivery = DeliveryChanges()
    with problems.collect():
        delivery = await delivery_changes(settings, body, None, await resolve_scope(principal))
    alert = alert_changes(body.alert, body.alert is not None, report_type, problems)
    alert |= changes_fields(body.changes, body.changes is not None, report_type, problems)
    if schedule is not None and not problems.invalid:
        with problems.collect():
            schedule.next_run_at = first_run(schedule)
    problems.raise_if_any()
    assert schedule is not None
    await create_endpoints(delivery, principal.user_id, None)
    schedule = schedule.model_copy(update=delivery.fields)
    if alert.get("alert"):
        schedule.alert = AlertConfig.model_validate(alert["alert"])
    schedule.changes = body.changes.config() if body.changes else None
    return await repository.insert(schedule), delivery.secrets


async def list_schedules(
    principal: Principal,
    *,
    status: str | None,
    report_type: str | None,
    template_id: str | None,
    owner: str | None,
    q: str | None,
    page: PageRequest,
) -> Listed[ReportSchedule]:
    template_oid = None
    if template_id is not None:
        if not ObjectId.is_valid(template_id):
            raise ValidationFailed.one("query.templateId", "not a valid id")
        template_oid = PydanticObjectId(template_id)
    query = repository.list_filter(
        principal,
        status=status,
        report_type=report_type,
        template_id=template_oid,
        owner=owner,
        q=q,
    )
    return await repository.find_page(query, page)


NOT_NULL = ("name", "missed_run_policy", "parameters")


async def update_schedule(
    settings: Settings, principal: Principal, schedule_id: str, body: ScheduleUpdate
) -> tuple[ReportSchedule, dict[PydanticObjectId, str]]:
    """The changed schedule and the signing secrets of its new webhook endpoints; every
    problem of the change is named in one 422."""
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    sent = body.model_fields_set
    problems = Problems()
    changes: dict[str, Any] = {}
    fields: tuple[str, ...] = ("name", "description", "missed_run_policy", "parameters")
    fields += ("format", "locale", "columns")
    for name in fields:
        if name in sent:
            value = getattr(body, name)
            if value is None and name in NOT_NULL:
                problems.add(FieldError(field=body_field(name), message="must not be null"))
            elif value is None and name == "format" and schedule.template_id is None:
                problems.add(
                    FieldError(field=body_field(name), message="required without a template")
                )
            else:
                changes[name] = value

    if "template_version" in sent:
        changes.update(await _version_changes(schedule, body.template_version))
    timing_sent = sent & set(TIMING_FIELDS)
    if timing_sent:
        with problems.collect():
            changes.update(updated_timing(schedule, body, timing_sent))
    delivery = DeliveryChanges()
    with problems.collect():
        delivery = await delivery_changes(settings, body, schedule, await resolve_scope(principal))
    changes.update(delivery.fields)
    report_type = changes.get("report_type", schedule.report_type)
    changes.update(alert_changes(body.alert, "alert" in sent, report_type, problems))
    changes.update(changes_fields(body.changes, "changes" in sent, report_type, problems))
    candidate = schedule.model_copy(update=changes)
    if {"parameters", "format", "template_version", "columns"} & changes.keys():
        # Checked as the one the schedule runs as: the owner (re-checked when an admin edits).
        with problems.collect():
            await runner.check_runnable(
                settings, candidate, await runner.runner_for(schedule, principal)
            )
        # Last writer wins: both parts checked together are written together.
        changes.setdefault("parameters", schedule.parameters)
        changes.setdefault("columns", schedule.columns)
        changes.setdefault("format", schedule.format)
        changes.setdefault("template_version", schedule.template_version)
        changes.setdefault("report_type", schedule.report_type)
        changes.update(states_reset(schedule, changes))  # another request: compared afresh
    if timing_sent and candidate.status != ScheduleStatus.PAUSED and not problems.invalid:
        with problems.collect():
            changes["next_run_at"] = first_run(candidate)
    problems.raise_if_any()
    if not changes and delivery.webhooks is None:
        return schedule, {}
    await create_endpoints(delivery, schedule.owner.user_id, schedule)
    changes.update(delivery.fields)
    if "next_run_at" in changes and schedule.status == ScheduleStatus.ENDED:
        changes.update(status=ScheduleStatus.ACTIVE.value, ended_at=None)
    for key in ("frequency", "missed_run_policy", "delivery", "empty_result", "audience"):
        if key in changes and changes[key] is not None:
            changes[key] = str(
                changes[key].value if hasattr(changes[key], "value") else changes[key]
            )
    if "delivery_recipients" in changes:
        changes["delivery_recipients"] = [r.model_dump() for r in changes["delivery_recipients"]]
    if changes.get("department_managers") is not None:
        changes["department_managers"] = changes["department_managers"].model_dump()
    updated = await repository.set_fields(schedule.id, changes)
    if updated is None:
        raise NotFound(f"No schedule with id {schedule_id!r}.", code="schedule-not-found")
    return updated, delivery.secrets


async def delete_schedule(principal: Principal, schedule_id: str) -> None:
    """Stops the schedule first (paused: no run of it delivers any more; its runs under way
    cancelled, its links revoked), then deletes it: a failure half-way leaves it paused, and
    deleting again finishes the job."""
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    await repository.set_fields(schedule.id, {"status": ScheduleStatus.PAUSED.value})
    await runner.stop_runs(schedule.id)
    await repository.delete(schedule.id)


async def pause_schedule(
    principal: Principal, schedule_id: str, reason: str | None
) -> ReportSchedule:
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    if schedule.status == ScheduleStatus.ENDED:
        raise Conflict("The schedule has ended; it cannot be paused.", code="schedule-ended")
    if schedule.status == ScheduleStatus.PAUSED and not reason:
        await runner.stop_runs(schedule.id)  # a pause that failed half-way is finished
        return schedule
    updated = await repository.set_fields(
        schedule.id,
        {
            "status": ScheduleStatus.PAUSED.value,
            "paused_reason": reason or f"Paused by {principal.name}.",
            "paused_at": utcnow(),
            "next_run_at": None,  # nothing runs until it is resumed, which computes it afresh
        },
    )
    assert updated is not None
    await runner.stop_runs(schedule.id)
    return updated


async def resume_schedule(principal: Principal, schedule_id: str) -> ReportSchedule:
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    if schedule.status == ScheduleStatus.ACTIVE:
        return schedule
    upcoming = next_run(schedule.recurrence(), utcnow())
    if upcoming is None:
        raise Conflict(
            "The schedule has no run time left before its endDate; change endDate to resume it.",
            code="schedule-ended",
        )
    updated = await repository.set_fields(
        schedule.id,
        {
            "status": ScheduleStatus.ACTIVE.value,
            "paused_reason": None,
            "paused_at": None,
            "ended_at": None,
            "consecutive_failures": 0,
            "next_run_at": upcoming,
        },
    )
    assert updated is not None
    return updated


async def run_now(
    resources: Resources,
    principal: Principal,
    schedule_id: str,
    *,
    idempotency_key: str | None,
    request_id: str | None,
) -> Submission:
    """One run at once, outside the timetable, as the schedule's owner."""
    schedule = await get_visible(principal, schedule_id)
    return await runner.run_now(
        resources, principal, schedule, idempotency_key=idempotency_key, request_id=request_id
    )


async def list_runs(
    principal: Principal,
    schedule_id: str,
    *,
    status: str | None,
    page: PageRequest,
) -> Listed[ReportJob]:
    """The jobs the schedule created: its slots, run-now jobs and retries of either."""
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    return await repository.find_runs(schedule.id, status=status, page=page)
