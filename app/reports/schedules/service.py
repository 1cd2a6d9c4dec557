"""The rules of report schedules: ownership, create / change / delete, pause / resume, run-now
and history. When a schedule runs is `timing.py`; what a run asks for and as whom is
`runner.py`."""

from __future__ import annotations

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
from app.reports.jobs.requests import Submission
from app.reports.schedules import repository, runner
from app.reports.schedules.alerts.models import AlertConfig
from app.reports.schedules.delivery import create_endpoints
from app.reports.schedules.examine import examine_create, examine_update
from app.reports.schedules.models import ReportSchedule, ScheduleStatus
from app.reports.schedules.recurrence import next_run
from app.reports.schedules.schemas import ScheduleCreate, ScheduleOut, ScheduleUpdate
from app.reports.schedules.timing import preview
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
    Every problem of the request is named in one 422 (`examine.examine_create`)."""
    new = await examine_create(settings, principal, body)
    schedule, delivery = new.schedule, new.delivery
    await create_endpoints(delivery, principal.user_id, None)
    schedule = schedule.model_copy(update=delivery.fields)
    if new.alert.get("alert"):
        schedule.alert = AlertConfig.model_validate(new.alert["alert"])
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


async def update_schedule(
    settings: Settings, principal: Principal, schedule_id: str, body: ScheduleUpdate
) -> tuple[ReportSchedule, dict[PydanticObjectId, str]]:
    """The changed schedule and the signing secrets of its new webhook endpoints; every
    problem of the change is named in one 422 (`examine.examine_update`)."""
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    change = await examine_update(settings, principal, schedule, body)
    changes, delivery = change.changes, change.delivery
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


async def check_update(
    settings: Settings, principal: Principal, schedule_id: str, body: ScheduleUpdate
) -> None:
    """`update_schedule`'s checks, nothing stored."""
    await examine_update(settings, principal, await get_visible(principal, schedule_id), body)


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
