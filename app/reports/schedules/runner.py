"""Running a schedule: what a run asks for, as whom, run-now and the scheduler's slot job, and
the outcome bookkeeping that pauses a schedule that keeps failing. Every run goes through the
request road (`app.reports.jobs.requests.submit`)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from beanie import PydanticObjectId

from app.common.time import utcnow
from app.config import Settings
from app.errors import Conflict, Forbidden
from app.observability import SCHEDULE_AUTO_PAUSES, SCHEDULE_FAILURES
from app.platform.models import User
from app.platform.repository import user_by_id
from app.reports.deliveries import outbox
from app.reports.deliveries import repository as deliveries
from app.reports.deliveries.inactive import without_inactive
from app.reports.deliveries.models import Audience, DeliveryConfig, Recipient, SkippedRecipient
from app.reports.deliveries.recipients import with_user_locales
from app.reports.jobs import repository as jobs
from app.reports.jobs.models import JobStatus, ReportJob, Requester
from app.reports.jobs.requests import (
    ReportRequest,
    ScheduleSlotTaken,
    Submission,
    check,
    submit,
)
from app.reports.schedules import bursting, repository
from app.reports.schedules.models import ReportSchedule, ScheduleStatus
from app.reports.templates import repository as templates
from app.reports.templates.models import ReportTemplate, ReportTemplateVersion
from app.runtime.resources import Resources
from app.security import (
    Principal,
    Role,
    department_with_descendants,
    principal_of,
    resolve_scope,
)

log = structlog.get_logger(__name__)

# The audiences that run once per distinct recipient scope.
PER_SCOPE = (Audience.RECIPIENT, Audience.DEPARTMENT_MANAGERS)


class OwnerUnavailable(Forbidden):
    """The owner is gone or lost the right: the schedule cannot run as them any more."""

    code = "schedule-owner-unavailable"


class ScheduleBroken(Conflict):
    """What the schedule runs no longer exists or is no longer usable."""

    code = "schedule-broken"


def _with_timezone(parameters: dict[str, Any], timezone: str) -> dict[str, Any]:
    """Presets resolve in the schedule's timezone unless the parameters name one."""
    return parameters if "timezone" in parameters else {**parameters, "timezone": timezone}


async def schedule_request(
    schedule: ReportSchedule,
    principal: Principal,
    *,
    scheduled_for: datetime | None = None,
    idempotency_key: str | None = None,
    request_id: str | None = None,
) -> ReportRequest:
    """What a run of the schedule asks for, as `principal` (the owner) sees it now. A slot
    (`scheduled_for`) is a scheduled run and does not count against the owner's quota."""
    return replace(
        await _what_it_runs(schedule, principal),
        schedule_id=schedule.id,
        scheduled_for=scheduled_for,
        idempotency_key=idempotency_key,
        request_id=request_id,
        enforce_quota=scheduled_for is None,
        delivery=await _delivery(schedule),
    )


async def _delivery(
    schedule: ReportSchedule, recipients: list[Recipient] | None = None
) -> DeliveryConfig:
    """What a run delivers, each platform-user recipient with their locale as it is now (the
    job keeps it: a retry writes to them in the same language)."""
    config = schedule.delivery_config(recipients)
    config.recipients, skipped = await without_inactive(config.recipients)
    config.skipped_recipients += skipped
    config.recipients = await with_user_locales(config.recipients)
    return config


async def _what_it_runs(schedule: ReportSchedule, principal: Principal) -> ReportRequest:
    if schedule.template_id is None:
        assert schedule.format is not None
        return ReportRequest(
            report_type=schedule.report_type,
            format=schedule.format,
            parameters=_with_timezone(schedule.parameters, schedule.timezone),
            locale=schedule.locale,
            columns=_keys(schedule.columns),
        )
    template = await templates.get(schedule.template_id)
    if template is None:
        raise ScheduleBroken("Its template was deleted.")
    if template.archived:
        raise ScheduleBroken(f"Its template {template.name!r} is archived.")
    if not templates.is_visible(template, principal):
        raise ScheduleBroken(f"Its template {template.name!r} is no longer shared with the owner.")
    content: ReportTemplate | ReportTemplateVersion = template
    if schedule.template_version is not None:
        pinned = await templates.get_version(schedule.template_id, schedule.template_version)
        if pinned is None:
            raise ScheduleBroken(
                f"Version {schedule.template_version} of its template {template.name!r} is "
                "not kept."
            )
        content = pinned
    return ReportRequest(
        report_type=content.report_type,
        format=schedule.format or content.format,
        parameters=_with_timezone({**content.parameters, **schedule.parameters}, schedule.timezone),
        locale=schedule.locale or content.locale,
        columns=_keys(schedule.columns or content.columns),
        template_id=template.id,
        template_version=content.version,
    )


async def check_runnable(
    settings: Settings, schedule: ReportSchedule, principal: Principal
) -> None:
    """Fails early (at create / update) with the errors a run would meet: invalid parameters,
    a report type the role may not run, ids outside the data scope."""
    request = await schedule_request(schedule, principal)
    what = (request.report_type, request.format, request.parameters)
    await check(settings, principal, *what, columns=request.columns)


def _keys(columns: list[str] | None) -> tuple[str, ...] | None:
    return tuple(columns) if columns is not None else None


async def owner_principal(owner: Requester) -> Principal:
    """The owner as a caller, re-checked against the users collection now: a missing or
    inactive user, one who no longer holds the roles they had, or (unless admin) one who has
    left the departments the schedule was created with, cannot run schedules."""
    user = await user_by_id(owner.user_id)
    if user is None:
        raise OwnerUnavailable(f"The owner {owner.name} ({owner.user_id}) no longer exists.")
    if user.status != "active":
        raise OwnerUnavailable(f"The owner {owner.name} ({owner.user_id}) is {user.status}.")
    principal = principal_of(user, roles=owner.roles, department_ids=owner.department_ids)
    if principal is None:
        raise OwnerUnavailable(
            f"The owner {owner.name} no longer holds the role(s) {', '.join(owner.roles)}."
        )
    if not principal.is_admin and (Role.MANAGER in principal.roles or owner.department_ids):
        await _check_owner_department(owner, user)
    return principal


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


async def runner_for(schedule: ReportSchedule, principal: Principal) -> Principal:
    """Who a run asked for by `principal` runs as: the owner — the caller's own current rights
    when the owner asks, the owner's re-checked rights when an admin acts on someone else's
    schedule."""
    if schedule.owner.user_id == principal.user_id:
        return principal
    return await owner_principal(schedule.owner)


async def run_now(
    resources: Resources,
    principal: Principal,
    schedule: ReportSchedule,
    *,
    idempotency_key: str | None,
    request_id: str | None,
) -> Submission:
    """One run at once, outside the timetable (no scheduled slot), as the owner (a recipient
    audience: one run per recipient scope; the first is answered)."""
    runner = await runner_for(schedule, principal)
    request = await schedule_request(
        schedule, runner, idempotency_key=idempotency_key, request_id=request_id
    )
    if schedule.audience not in PER_SCOPE:
        return await submit(resources, runner, request)
    submissions = [
        await submit(resources, as_whom, replace(request, delivery=config, idempotency_key=key))
        for as_whom, config, key in await _recipient_runs(
            resources.settings, schedule, idempotency_key
        )
    ]
    if not submissions:
        raise ScheduleBroken(
            "None of its recipients is an active platform user."
            if schedule.audience == Audience.RECIPIENT
            else "No department of its subtree has an active manager."
        )
    return submissions[0]


async def run_slot(
    resources: Resources, schedule: ReportSchedule, slot: datetime
) -> PydanticObjectId | None:
    """The scheduler's job for one slot, as the owner re-checked now. A slot another worker
    already ran is a `schedule-slot-taken` 409."""
    principal = await owner_principal(schedule.owner)
    request = await schedule_request(schedule, principal, scheduled_for=slot)
    if schedule.audience not in PER_SCOPE:
        submission = await submit(resources, principal, request)
        return submission.job.id
    first: PydanticObjectId | None = None
    taken: ScheduleSlotTaken | None = None
    runs = await _recipient_runs(resources.settings, schedule, None)
    for index, (as_whom, config, _) in enumerate(runs):
        # One job per (schedule, slot) is the index that makes a slot run once: each scope of
        # a recipient audience is its own slot, `index` milliseconds after the scheduled time.
        scoped_slot = slot + timedelta(milliseconds=index)
        try:
            submission = await submit(
                resources,
                as_whom,
                replace(request, delivery=config, scheduled_for=scoped_slot),
            )
        except ScheduleSlotTaken as exc:
            taken = exc  # another worker made this scope's job: the others may be missing
            continue
        first = first or submission.job.id
    if first is None and taken is not None:
        raise taken
    return first


async def _recipient_runs(
    settings: Settings, schedule: ReportSchedule, idempotency_key: str | None
) -> list[tuple[Principal, DeliveryConfig, str | None]]:
    """A recipient audience: each active platform-user recipient as a caller, grouped by their
    data scope (identical scopes run once, sent to all of them), in a stable order. A
    department-managers audience: the same, for the managers found in the platform now."""
    recipients = schedule.delivery_recipients
    skipped: list[SkippedRecipient] = []
    if schedule.audience == Audience.DEPARTMENT_MANAGERS:
        recipients, skipped = await _managers(settings, schedule)
    groups: dict[str, tuple[Principal, list[Recipient]]] = {}
    for recipient in recipients:
        if recipient.user_id is None:
            continue  # refused when the schedule was saved
        as_whom = await _user_principal(recipient.user_id)
        if as_whom is None:
            log.warning("schedule_recipient_skipped", user_id=recipient.user_id)
            skipped.append(
                SkippedRecipient(
                    user_id=recipient.user_id, address=recipient.address, reason="inactive"
                )
            )
            continue
        scope = await resolve_scope(as_whom)
        key = json.dumps([as_whom.role.value, scope.to_document()], sort_keys=True, default=str)
        groups.setdefault(key, (as_whom, []))[1].append(recipient)
    runs = [
        (
            as_whom,
            await _delivery(schedule, members),
            f"{idempotency_key}:{index}" if idempotency_key else None,
        )
        for index, (_, (as_whom, members)) in enumerate(sorted(groups.items()))
    ]
    if runs:  # the first scope's run lists who was left out
        runs[0][1].skipped_recipients[:0] = skipped
    return runs


async def _managers(
    settings: Settings, schedule: ReportSchedule
) -> tuple[list[Recipient], list[SkippedRecipient]]:
    if schedule.department_managers is None:
        raise ScheduleBroken("Its audience `department-managers` names no department.")
    try:
        return await bursting.managers_now(settings, schedule, schedule.department_managers)
    except bursting.BurstTooLarge as exc:
        raise ScheduleBroken(f"Its department-managers audience is too large: {exc}.") from None


async def _user_principal(user_id: str) -> Principal | None:
    user = await user_by_id(user_id)
    if user is None or user.status != "active":
        return None
    return principal_of(user)


async def stop_runs(schedule_id: PydanticObjectId) -> None:
    """After a pause or a delete was written: its queued runs are cancelled and its running
    ones asked to stop, then its unsent run deliveries are cancelled and its links revoked.
    In this order, a run committing meanwhile either meets the cancel (it ends cancelled) or
    reads the schedule stopped in its commit (`repository.delivers`: nothing planned) or was
    committed before the cancel reached it (its deliveries are then cancelled here). Safe to
    repeat."""
    cancelled, asked = await jobs.cancel_schedule_runs(schedule_id)
    revoked = await deliveries.revoke_links_for_schedule(schedule_id)
    if cancelled or asked or revoked:
        log.info(
            "schedule_runs_stopped",
            schedule_id=str(schedule_id),
            cancelled=cancelled,
            asked_to_stop=asked,
            links_revoked=revoked,
        )


async def pause_for(
    settings: Settings,
    schedule: ReportSchedule,
    reason: str,
    *,
    where: dict[str, Any] | None = None,
) -> bool:
    """Pauses an active schedule by itself, saying why: its runs under way stop, its delivery
    links stop working and its owner gets an e-mail saying why and how to resume."""
    assert schedule.id is not None
    updated = await repository.set_fields(
        schedule.id,
        {
            "status": ScheduleStatus.PAUSED.value,
            "paused_reason": reason,
            "paused_at": utcnow(),
            "next_run_at": None,  # resuming computes it afresh
        },
        where={"status": ScheduleStatus.ACTIVE.value, **(where or {})},
    )
    if updated is None:
        return False
    log.warning("schedule_paused", schedule_id=str(schedule.id), reason=reason)
    SCHEDULE_AUTO_PAUSES.inc()
    await stop_runs(schedule.id)
    await outbox.insert_pause_notice(
        settings,
        owner=schedule.owner,
        schedule_id=schedule.id,
        schedule_name=schedule.name,
        report_type=schedule.report_type,
        reason=reason,
        schedule_locale=schedule.locale,
    )
    return True


async def record_job_outcome(settings: Settings, job: ReportJob) -> None:
    """Called by the worker after every job of a schedule finishes (retries included). Counts
    consecutive failures (a completed run resets the count); after
    `SCHEDULE_MAX_CONSECUTIVE_FAILURES` failures in a row the schedule pauses itself."""
    if job.schedule_id is None or job.id is None or job.test_run:
        return
    if job.status == JobStatus.COMPLETED:
        await repository.record_outcome(job.schedule_id, job.id, failed=False)
        return
    if job.status != JobStatus.FAILED:
        return  # cancelled by someone: neither a success nor the schedule's fault
    SCHEDULE_FAILURES.inc()
    schedule = await repository.record_outcome(job.schedule_id, job.id, failed=True)
    limit = settings.schedule_max_consecutive_failures
    if schedule is None or schedule.consecutive_failures < limit:
        return
    error = f" The last error: {job.error.code}: {job.error.message}" if job.error else ""
    await pause_for(
        settings,
        schedule,
        f"Paused after {schedule.consecutive_failures} consecutive failed runs.{error}"[:1000],
    )
