"""The rules of report schedules: timing, ownership, pause / resume, run-now, history, and the
outcome bookkeeping that pauses a schedule that keeps failing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from beanie import PydanticObjectId
from bson import ObjectId
from bson.errors import InvalidId

from app.common.schemas import decode_cursor, encode_cursor
from app.common.time import utcnow
from app.config import get_settings
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.platform.models import User
from app.reports.jobs.models import JobStatus, ReportJob, Requester
from app.reports.jobs.service import create_job, requester_of, validate_parameters
from app.reports.schedules import repository
from app.reports.schedules.models import ReportSchedule, ScheduleStatus
from app.reports.schedules.recurrence import (
    Frequency,
    local_time,
    next_run,
    next_runs,
    validate_cron,
)
from app.reports.schedules.schemas import RunTime, ScheduleCreate, ScheduleUpdate
from app.runtime.resources import Resources
from app.security import Principal, Role, department_with_descendants, resolve_scope

log = structlog.get_logger(__name__)

PREVIEW_RUNS = 5
TIMING_FIELDS = (
    "frequency",
    "time_of_day",
    "day_of_week",
    "day_of_month",
    "cron_expression",
    "timezone",
    "start_date",
    "end_date",
)
# Which timing fields each frequency uses (the others must not be sent).
USES: dict[Frequency, frozenset[str]] = {
    Frequency.DAILY: frozenset({"time_of_day"}),
    Frequency.WEEKLY: frozenset({"time_of_day", "day_of_week"}),
    Frequency.MONTHLY: frozenset({"time_of_day", "day_of_month"}),
    Frequency.QUARTERLY: frozenset({"time_of_day", "day_of_month"}),
    Frequency.CRON: frozenset({"cron_expression"}),
}
ALWAYS = frozenset({"frequency", "timezone", "start_date", "end_date"})


class OwnerUnavailable(Forbidden):
    """The owner is gone or lost the right: the schedule cannot run as them any more."""

    code = "schedule-owner-unavailable"


class ScheduleBroken(Conflict):
    """What the schedule runs no longer exists or is no longer usable."""

    code = "schedule-broken"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _field(name: str) -> str:
    return f"body.{_camel(name)}"


def parse_schedule_id(value: str) -> PydanticObjectId:
    if not ObjectId.is_valid(value):
        raise NotFound(f"No schedule with id {value!r}.", code="schedule-not-found")
    return PydanticObjectId(value)


# ---------------------------------------------------------------------------------------------
# Timing


def build_timing(values: dict[str, Any], sent: set[str]) -> dict[str, Any]:
    """Checks a complete set of timing fields (`sent` are those the caller gave, which must fit
    the frequency); returns the stored form, fields the frequency does not use cleared."""
    frequency = Frequency(values["frequency"])
    uses = USES[frequency] | ALWAYS
    for name in TIMING_FIELDS:
        if name in sent and name not in uses and values.get(name) is not None:
            raise ValidationFailed.one(
                _field(name), f"not used with frequency {frequency.value}", type="not_allowed"
            )
    stored: dict[str, Any] = {name: None for name in TIMING_FIELDS}
    stored["frequency"] = frequency
    stored["timezone"] = values.get("timezone") or "UTC"
    for name in uses - ALWAYS:
        if values.get(name) is None:
            raise ValidationFailed.one(
                _field(name), f"required with frequency {frequency.value}", type="missing"
            )
        stored[name] = values[name]
    if frequency == Frequency.CRON:
        stored["time_of_day"] = "00:00"
        try:
            stored["cron_expression"] = validate_cron(values["cron_expression"])
        except ValueError as exc:
            raise ValidationFailed.one(_field("cron_expression"), str(exc)) from None
    start, end = values.get("start_date"), values.get("end_date")
    if start and end and end < start:
        raise ValidationFailed.one(_field("end_date"), f"must not be before startDate ({start})")
    stored["start_date"] = start.isoformat() if start else None
    stored["end_date"] = end.isoformat() if end else None
    return stored


def preview(schedule: ReportSchedule, now: datetime | None = None) -> list[RunTime]:
    """The next 5 runs: from nextRunAt when active, from now when paused (what resuming would
    give); none once ended."""
    if schedule.status == ScheduleStatus.ENDED:
        return []
    rule = schedule.recurrence()
    if schedule.status == ScheduleStatus.ACTIVE and schedule.next_run_at:
        first = schedule.next_run_at
        runs = [first, *next_runs(rule, first, PREVIEW_RUNS - 1)]
    else:
        runs = next_runs(rule, now or utcnow(), PREVIEW_RUNS)
    return [RunTime(local=local_time(r, schedule.timezone), utc=r) for r in runs]


# ---------------------------------------------------------------------------------------------
# What a schedule runs


@dataclass
class JobRequest:
    report_type: str
    format: str
    parameters: dict[str, Any]
    template_id: PydanticObjectId | None = None
    template_version: int | None = None


def _with_timezone(parameters: dict[str, Any], timezone: str) -> dict[str, Any]:
    """Presets resolve in the schedule's timezone unless the parameters name one."""
    return parameters if "timezone" in parameters else {**parameters, "timezone": timezone}


async def job_request(schedule: ReportSchedule, principal: Principal) -> JobRequest:
    """What a run of the schedule asks for, as `principal` (the owner) sees it now."""
    if schedule.template_id is None:
        assert schedule.format is not None
        return JobRequest(
            report_type=schedule.report_type,
            format=schedule.format,
            parameters=_with_timezone(schedule.parameters, schedule.timezone),
        )
    from app.reports.templates import repository as templates

    template = await templates.get(schedule.template_id)
    if template is None:
        raise ScheduleBroken("Its template was deleted.")
    if template.archived:
        raise ScheduleBroken(f"Its template {template.name!r} is archived.")
    if not templates.is_visible(template, principal):
        raise ScheduleBroken(f"Its template {template.name!r} is no longer shared with the owner.")
    return JobRequest(
        report_type=template.report_type,
        format=schedule.format or template.format,
        parameters=_with_timezone(
            {**template.parameters, **schedule.parameters}, schedule.timezone
        ),
        template_id=template.id,
        template_version=template.version,
    )


async def owner_principal(owner: Requester) -> Principal:
    """The owner as a caller, re-checked against the users collection now: a missing or
    inactive user, one who no longer holds the roles they had, or (unless admin) one who has
    left the departments the schedule was created with, cannot run schedules."""
    user = (
        await User.get(PydanticObjectId(owner.user_id))
        if ObjectId.is_valid(owner.user_id)
        else None
    )
    if user is None:
        raise OwnerUnavailable(f"The owner {owner.name} ({owner.user_id}) no longer exists.")
    if user.status != "active":
        raise OwnerUnavailable(f"The owner {owner.name} ({owner.user_id}) is {user.status}.")
    roles = tuple(Role(r) for r in owner.roles if r in user.roles and r in Role._value2member_map_)
    if not roles:
        raise OwnerUnavailable(
            f"The owner {owner.name} no longer holds the role(s) {', '.join(owner.roles)}."
        )
    if Role.ADMIN not in roles and (Role.MANAGER in roles or owner.department_ids):
        await _check_owner_department(owner, user)
    return Principal(
        user_id=owner.user_id,
        name=user.name,
        email=user.email,
        roles=roles,
        department_ids=tuple(owner.department_ids),
    )


async def _check_owner_department(owner: Requester, user: User) -> None:
    """The departments stored with the schedule (from the owner's token at creation) hold only
    while the owner still belongs to one of them or a sub-department: a manager moved elsewhere
    must not keep reporting on their old department."""
    allowed = await department_with_descendants(owner.department_ids)
    current = str(user.department_id) if user.department_id else None
    if current is not None and current in allowed:
        return
    where = f"department {current}" if current else "no department"
    held = ", ".join(owner.department_ids) or "none"
    raise OwnerUnavailable(
        f"The owner {owner.name} ({owner.user_id}) is now in {where}, outside the "
        f"department(s) the schedule runs for ({held})."
    )


async def _check_runnable(principal: Principal, request: JobRequest) -> None:
    """Fails early (at create / update) with the errors a run would meet: invalid parameters,
    a report type the role may not run, ids outside the data scope."""
    try:
        definition, params = validate_parameters(
            request.report_type, request.format, request.parameters
        )
    except ValidationFailed as exc:
        for error in exc.errors or []:
            if not error.field.startswith("body."):
                error.field = f"body.{error.field}"
        raise
    if principal.role not in definition.roles:
        raise Forbidden(
            f"The role {principal.role.value!r} may not run {request.report_type} reports.",
            code="report-type-not-allowed",
        )
    definition.resolve(params, await resolve_scope(principal), utcnow())


# ---------------------------------------------------------------------------------------------
# CRUD


def _visible(schedule: ReportSchedule | None, principal: Principal) -> bool:
    return schedule is not None and (
        principal.is_admin or schedule.owner.user_id == principal.user_id
    )


async def get_visible(principal: Principal, schedule_id: str) -> ReportSchedule:
    schedule = await repository.get(parse_schedule_id(schedule_id))
    if schedule is None or not _visible(schedule, principal):
        raise NotFound(f"No schedule with id {schedule_id!r}.", code="schedule-not-found")
    return schedule


async def create_schedule(principal: Principal, body: ScheduleCreate) -> ReportSchedule:
    sent = body.model_fields_set
    timing = build_timing({n: getattr(body, n) for n in TIMING_FIELDS}, sent)
    parameters = body.parameters or {}
    if body.template_id is not None:
        for name in ("report_type",):
            if getattr(body, name) is not None:
                raise ValidationFailed.one(
                    _field(name), "not allowed with templateId (the template decides it)"
                )
        from app.reports.templates import service as templates

        try:
            template = await templates.get_visible(principal, body.template_id)
        except NotFound:
            raise ValidationFailed.one(
                "body.templateId", "no template with this id is visible to you"
            ) from None
        if template.archived:
            raise ValidationFailed.one("body.templateId", "the template is archived")
        report_type = template.report_type
        template_id = template.id
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
        parameters=parameters,
        format=body.format,
        owner=requester_of(principal),
        recipients=list(body.recipients),
        missed_run_policy=body.missed_run_policy,
        **timing,
    )
    await _check_runnable(principal, await job_request(schedule, principal))
    schedule.next_run_at = next_run(schedule.recurrence(), utcnow())
    if schedule.next_run_at is None:
        raise ValidationFailed.one(
            "body.endDate", "the schedule would never run: no run time is left before it"
        )
    return await repository.insert(schedule)


def _position(cursor: str) -> tuple[datetime, PydanticObjectId]:
    try:
        raw = decode_cursor(cursor)
        return datetime.fromisoformat(raw["c"]), PydanticObjectId(raw["i"])
    except (ValueError, KeyError, TypeError, InvalidId) as exc:
        raise ValidationFailed.one("query.cursor", "not a valid cursor") from exc


def _next_cursor(items: list[Any], limit: int) -> tuple[list[Any], str | None]:
    if len(items) <= limit:
        return items, None
    items = items[:limit]
    last = items[-1]
    return items, encode_cursor({"c": last.created_at.isoformat(), "i": str(last.id)})


async def list_schedules(
    principal: Principal,
    *,
    status: str | None,
    report_type: str | None,
    template_id: str | None,
    owner: str | None,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[ReportSchedule], str | None, int]:
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
    after = _position(cursor) if cursor else None
    items, next_cursor = _next_cursor(
        await repository.find_page(query, limit=limit + 1, after=after), limit
    )
    return items, next_cursor, await repository.count(query)


async def update_schedule(
    principal: Principal, schedule_id: str, body: ScheduleUpdate
) -> ReportSchedule:
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("name", "description", "recipients", "missed_run_policy", "parameters", "format"):
        if name in sent:
            value = getattr(body, name)
            if value is None and name in ("name", "recipients", "missed_run_policy", "parameters"):
                raise ValidationFailed.one(_field(name), "must not be null")
            if value is None and name == "format" and schedule.template_id is None:
                raise ValidationFailed.one(_field(name), "required without a template")
            changes[name] = value

    timing_sent = sent & set(TIMING_FIELDS)
    if timing_sent:
        current = schedule.recurrence()
        merged: dict[str, Any] = {
            "frequency": schedule.frequency,
            "time_of_day": schedule.time_of_day,
            "day_of_week": current.day_of_week,
            "day_of_month": current.day_of_month,
            "cron_expression": current.cron_expression,
            "timezone": schedule.timezone,
            "start_date": current.start_date,
            "end_date": current.end_date,
        }
        if "frequency" in sent and body.frequency is None:
            raise ValidationFailed.one("body.frequency", "must not be null")
        new_frequency = Frequency(body.frequency) if body.frequency else schedule.frequency
        if new_frequency != schedule.frequency:  # drop what the old frequency used
            for name in TIMING_FIELDS:
                if name not in ALWAYS and name not in timing_sent:
                    merged[name] = None
            if schedule.frequency != Frequency.CRON and "time_of_day" not in timing_sent:
                merged["time_of_day"] = schedule.time_of_day
        for name in timing_sent:
            merged[name] = getattr(body, name)
        changes.update(build_timing(merged, timing_sent))

    if not changes:
        return schedule
    candidate = schedule.model_copy(update=changes)
    if {"parameters", "format"} & changes.keys():
        # Checked as the one the schedule runs as: the owner (re-checked when an admin edits).
        runner = (
            principal
            if schedule.owner.user_id == principal.user_id
            else await owner_principal(schedule.owner)
        )
        await _check_runnable(runner, await job_request(candidate, runner))
    if timing_sent and candidate.status != ScheduleStatus.PAUSED:
        candidate_next = next_run(candidate.recurrence(), utcnow())
        if candidate_next is None:
            raise ValidationFailed.one(
                "body.endDate", "the schedule would never run: no run time is left before it"
            )
        changes["next_run_at"] = candidate_next
        if schedule.status == ScheduleStatus.ENDED:
            changes.update(status=ScheduleStatus.ACTIVE.value, ended_at=None)
    for key in ("frequency", "missed_run_policy"):
        if key in changes and changes[key] is not None:
            changes[key] = str(
                changes[key].value if hasattr(changes[key], "value") else changes[key]
            )
    updated = await repository.set_fields(schedule.id, changes)
    if updated is None:
        raise NotFound(f"No schedule with id {schedule_id!r}.", code="schedule-not-found")
    return updated


async def delete_schedule(principal: Principal, schedule_id: str) -> None:
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    await repository.delete(schedule.id)


async def pause_schedule(
    principal: Principal, schedule_id: str, reason: str | None
) -> ReportSchedule:
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    if schedule.status == ScheduleStatus.ENDED:
        raise Conflict("The schedule has ended; it cannot be paused.", code="schedule-ended")
    if schedule.status == ScheduleStatus.PAUSED and not reason:
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
) -> ReportJob:
    """One run at once, outside the timetable (no scheduled slot). It runs as the owner: the
    caller's own current rights when the owner asks, the owner's re-checked rights when an
    admin asks for someone else's schedule."""
    schedule = await get_visible(principal, schedule_id)
    if schedule.owner.user_id == principal.user_id:
        runner = principal
    else:
        runner = await owner_principal(schedule.owner)
    request = await job_request(schedule, runner)
    return await create_job(
        resources,
        runner,
        report_type=request.report_type,
        format=request.format,
        parameters=request.parameters,
        template_id=request.template_id,
        template_version=request.template_version,
        schedule_id=schedule.id,
        scheduled_for=None,
        idempotency_key=idempotency_key,
        request_id=request_id,
    )


async def list_runs(
    principal: Principal,
    schedule_id: str,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[ReportJob], str | None, int]:
    schedule = await get_visible(principal, schedule_id)
    assert schedule.id is not None
    after = _position(cursor) if cursor else None
    jobs, next_cursor = _next_cursor(
        await repository.find_runs(schedule.id, status=status, limit=limit + 1, after=after),
        limit,
    )
    return jobs, next_cursor, await repository.count_runs(schedule.id, status)


# ---------------------------------------------------------------------------------------------
# Outcomes (called by the worker after every job of a schedule finishes)


async def pause_for(
    schedule: ReportSchedule, reason: str, *, where: dict[str, Any] | None = None
) -> bool:
    """Pauses an active schedule by itself, saying why."""
    assert schedule.id is not None
    updated = await repository.set_fields(
        schedule.id,
        {"status": ScheduleStatus.PAUSED.value, "paused_reason": reason, "paused_at": utcnow()},
        where={"status": ScheduleStatus.ACTIVE.value, **(where or {})},
    )
    if updated is not None:
        log.warning("schedule_paused", schedule_id=str(schedule.id), reason=reason)
    return updated is not None


async def record_job_outcome(job: ReportJob) -> None:
    """Counts consecutive failures (a completed run resets the count); after
    `SCHEDULE_MAX_CONSECUTIVE_FAILURES` failures in a row the schedule pauses itself."""
    if job.schedule_id is None or job.id is None:
        return
    if job.status == JobStatus.COMPLETED:
        await repository.record_outcome(job.schedule_id, job.id, failed=False)
        return
    if job.status != JobStatus.FAILED:
        return  # cancelled by someone: neither a success nor the schedule's fault
    schedule = await repository.record_outcome(job.schedule_id, job.id, failed=True)
    limit = get_settings().schedule_max_consecutive_failures
    if schedule is None or schedule.consecutive_failures < limit:
        return
    error = f" The last error: {job.error.code}: {job.error.message}" if job.error else ""
    await pause_for(
        schedule,
        f"Paused after {schedule.consecutive_failures} consecutive failed runs.{error}"[:1000],
    )
