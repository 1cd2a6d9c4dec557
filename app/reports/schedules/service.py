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
from app.errors import Conflict, NotFound, ValidationFailed
from app.reports.deliveries.schemas import WebhookOut
from app.reports.jobs.models import ReportJob
from app.reports.jobs.requests import Submission, requester_of
from app.reports.schedules import repository, runner
from app.reports.schedules.delivery import delivery_changes
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
from app.reports.templates import service as templates
from app.reports.templates.models import ReportTemplate
from app.runtime.resources import Resources
from app.security import Principal

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
    if body.report_type is not None:
        raise ValidationFailed.one(
            body_field("report_type"), "not allowed with templateId (the template decides it)"
        )
    try:
        template = await templates.get_visible(principal, body.template_id)
    except NotFound:
        raise ValidationFailed.one(
            "body.templateId", "no template with this id is visible to you"
        ) from None
    if template.archived:
        raise ValidationFailed.one("body.templateId", "the template is archived")
    return template


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
    """The new schedule and the signing secrets of its new webhook endpoints (shown once)."""
    sent = body.model_fields_set
    timing = build_timing({n: getattr(body, n) for n in TIMING_FIELDS}, sent)
    if body.template_id is not None:
        template = await _template_of(principal, body)
        report_type, template_id = template.report_type, template.id
    else:
        if body.report_type is None:
            raise ValidationFailed.one(
                "body.reportType", "required without templateId", type="missing"
            )
        if body.format is None:
            raise ValidationFailed.one("body.format", "required without templateId", type="missing")
        report_type, template_id = body.report_type, None

    schedule = ReportSchedule(
        name=body.name,
        description=body.description,
        template_id=template_id,
        report_type=report_type,
        parameters=body.parameters or {},
        format=body.format,
        locale=body.locale,
        owner=requester_of(principal),
        missed_run_policy=body.missed_run_policy,
        **timing,
    )
    await runner.check_runnable(settings, schedule, principal)
    delivery = await delivery_changes(settings, body, principal.user_id, None)
    schedule = schedule.model_copy(update=delivery.fields)
    schedule.next_run_at = first_run(schedule)
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
    """The changed schedule and the signing secrets of its new webhook endpoints."""
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("name", "description", "missed_run_policy", "parameters", "format", "locale"):
        if name in sent:
            value = getattr(body, name)
            if value is None and name in NOT_NULL:
                raise ValidationFailed.one(body_field(name), "must not be null")
            if value is None and name == "format" and schedule.template_id is None:
                raise ValidationFailed.one(body_field(name), "required without a template")
            changes[name] = value

    timing_sent = sent & set(TIMING_FIELDS)
    if timing_sent:
        changes.update(updated_timing(schedule, body, timing_sent))
    delivery = await delivery_changes(settings, body, schedule.owner.user_id, schedule)
    changes.update(delivery.fields)

    if not changes:
        return schedule, {}
    candidate = schedule.model_copy(update=changes)
    if {"parameters", "format"} & changes.keys():
        # Checked as the one the schedule runs as: the owner (re-checked when an admin edits).
        await runner.check_runnable(
            settings, candidate, await runner.runner_for(schedule, principal)
        )
        # Last writer wins: both parts checked together are written together.
        changes.setdefault("parameters", schedule.parameters)
        changes.setdefault("format", schedule.format)
    if timing_sent and candidate.status != ScheduleStatus.PAUSED:
        changes["next_run_at"] = first_run(candidate)
        if schedule.status == ScheduleStatus.ENDED:
            changes.update(status=ScheduleStatus.ACTIVE.value, ended_at=None)
    for key in ("frequency", "missed_run_policy", "delivery", "empty_result", "audience"):
        if key in changes and changes[key] is not None:
            changes[key] = str(
                changes[key].value if hasattr(changes[key], "value") else changes[key]
            )
    if "delivery_recipients" in changes:
        changes["delivery_recipients"] = [r.model_dump() for r in changes["delivery_recipients"]]
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


async def refuse_template_in_use(principal: Principal, template: ReportTemplate) -> None:
    """A template a schedule that has not ended still uses cannot be deleted (409 naming the
    schedules the caller may see; other users' are counted, not named)."""
    assert template.id is not None
    users = await repository.live_schedules_using_template(template.id)
    if not users:
        return
    shown = [s for s in users if principal.is_admin or s.owner.user_id == principal.user_id]
    parts = [f"{s.name!r} ({s.id}, {s.status.value})" for s in shown]
    hidden = len(users) - len(shown)
    if hidden:
        parts.append(f"{hidden} schedule{'s' if hidden > 1 else ''} of other users")
    raise Conflict(
        f"The template is used by schedules that are not ended: {', '.join(parts)}. "
        "Delete them or point them elsewhere first.",
        code="template-in-use",
        extra={
            "schedules": [
                {"id": str(s.id), "name": s.name, "status": s.status.value} for s in shown
            ],
            "otherUsersSchedules": hidden,
        },
    )
