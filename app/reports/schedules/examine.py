"""A schedule's create or change checked as a whole before anything is stored: timing,
template or report type and its parameters (as the owner would run them), data scope,
recipients, webhooks, alert and change reports, every problem in one 422. `service.py` stores
what passes; `app.runtime.body_checks` runs the same checks on the parts of a body whose shape
failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.errors import FieldError, NotFound, Problems, ValidationFailed
from app.reports.jobs.requests import requester_of
from app.reports.schedules import runner
from app.reports.schedules.alerts.checks import alert_changes
from app.reports.schedules.changes.checks import changes_fields, states_reset
from app.reports.schedules.delivery import DeliveryChanges, delivery_changes
from app.reports.schedules.models import ReportSchedule, ScheduleStatus
from app.reports.schedules.schemas import ScheduleCreate, ScheduleUpdate
from app.reports.schedules.timing import (
    TIMING_FIELDS,
    body_field,
    build_timing,
    first_run,
    updated_timing,
)
from app.reports.templates import repository as template_store
from app.reports.templates import service as templates
from app.reports.templates import versions as template_versions
from app.reports.templates.models import ReportTemplate, ReportTemplateVersion
from app.security import Principal, resolve_scope

_REPORT = ("template_id", "template_version", "report_type")
# Which fields the checks read together (`app.runtime.body_checks`): the report type (or the
# template) decides what the format, parameters, columns, alert and change reports may be, the
# columns depend on the shape the parameters select, every timing field is judged against the
# frequency (and the end date against the start date and the timezone), the recipients and
# the department managers against the audience, the re-invited against the recipients.
SCHEDULE_DEPENDS: dict[str, tuple[str, ...]] = {
    "template_version": ("template_id",),
    "report_type": ("template_id",),
    **{name: _REPORT for name in ("format", "parameters", "alert", "changes")},
    "columns": (*_REPORT, "parameters"),
    **{name: ("frequency",) for name in TIMING_FIELDS if name not in ("frequency", "timezone")},
    "end_date": ("frequency", "start_date", "timezone"),
    "recipients": ("audience",),
    "department_managers": ("audience",),
    "reinvite": ("recipients",),
}
# What a create set aside for its shape takes instead (a name and a timing no check faults).
SCHEDULE_STAND_INS: dict[str, Any] = {"name": "-", "frequency": "daily", "time_of_day": "00:00"}


@dataclass
class NewSchedule:
    schedule: ReportSchedule
    delivery: DeliveryChanges
    alert: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScheduleChange:
    changes: dict[str, Any]
    delivery: DeliveryChanges


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


async def examine_create(
    settings: Settings, principal: Principal, body: ScheduleCreate
) -> NewSchedule:
    """The schedule a create makes, checked, nothing stored. Every problem of the request is
    named in one 422: timing, template or report type, parameters, data scope, recipients,
    webhooks, alert, change reports."""
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
    return NewSchedule(schedule, delivery, alert)


NOT_NULL = ("name", "missed_run_policy", "parameters")


async def examine_update(
    settings: Settings, principal: Principal, schedule: ReportSchedule, body: ScheduleUpdate
) -> ScheduleChange:
    """What an update changes in `schedule`, checked, nothing stored; every problem of the
    change is named in one 422."""
    sent = body.model_fields_set
    problems = Problems()
    changes: dict[str, Any] = {}
    fields = (
        "name",
        "description",
        "missed_run_policy",
        "parameters",
        "format",
        "locale",
        "columns",
    )
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
        with problems.collect():
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
    return ScheduleChange(changes, delivery)
