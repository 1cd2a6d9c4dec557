"""When a schedule runs: checking and storing its timing fields, the timing an update ends up
with, and the preview of its next runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.common.time import utcnow
from app.errors import FieldError, Problems, ValidationFailed
from app.reports.schedules.models import ReportSchedule, ScheduleStatus
from app.reports.schedules.recurrence import (
    Frequency,
    local_time,
    next_run,
    next_runs,
    validate_cron,
)
from app.reports.schedules.schemas import RunTime, ScheduleUpdate

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


def body_field(name: str) -> str:
    """`day_of_week` → `body.dayOfWeek`: errors name the field as the client sent it."""
    head, *rest = name.split("_")
    return "body." + head + "".join(p.title() for p in rest)


def build_timing(values: dict[str, Any], sent: set[str]) -> dict[str, Any]:
    """Checks a complete set of timing fields (`sent` are those the caller gave, which must fit
    the frequency); returns the stored form, fields the frequency does not use cleared. A 422
    names every problem at once."""
    frequency = Frequency(values["frequency"])
    uses = USES[frequency] | ALWAYS
    problems = Problems()
    for name in TIMING_FIELDS:
        if name in sent and name not in uses and values.get(name) is not None:
            problems.add(
                FieldError(
                    field=body_field(name),
                    message=f"not used with frequency {frequency.value}",
                    type="not_allowed",
                )
            )
    stored: dict[str, Any] = {name: None for name in TIMING_FIELDS}
    stored["frequency"] = frequency
    stored["timezone"] = values.get("timezone") or "UTC"
    for name in TIMING_FIELDS:
        if name not in uses - ALWAYS:
            continue
        if values.get(name) is None:
            problems.add(
                FieldError(
                    field=body_field(name),
                    message=f"required with frequency {frequency.value}",
                    type="missing",
                )
            )
        stored[name] = values.get(name)
    if frequency == Frequency.CRON:
        stored["time_of_day"] = "00:00"
        if values.get("cron_expression") is not None:
            try:
                stored["cron_expression"] = validate_cron(values["cron_expression"])
            except ValueError as exc:
                problems.add(FieldError(field=body_field("cron_expression"), message=str(exc)))
    start, end = values.get("start_date"), values.get("end_date")
    if start and end and end < start:
        problems.add(
            FieldError(
                field=body_field("end_date"), message=f"must not be before startDate ({start})"
            )
        )
    problems.raise_if_any()
    stored["start_date"] = start.isoformat() if start else None
    stored["end_date"] = end.isoformat() if end else None
    return stored


def updated_timing(
    schedule: ReportSchedule, body: ScheduleUpdate, timing_sent: set[str]
) -> dict[str, Any]:
    """The stored timing after an update that sent `timing_sent`: the sent fields over the
    current ones, minus what the old frequency used when the frequency changes."""
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
    if "frequency" in timing_sent and body.frequency is None:
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
    return build_timing(merged, timing_sent)


def first_run(schedule: ReportSchedule, now: datetime | None = None) -> datetime:
    """The schedule's next run from now, or a 422 when its timing has none left."""
    upcoming = next_run(schedule.recurrence(), now or utcnow())
    if upcoming is None:
        raise ValidationFailed.one(
            "body.endDate", "the schedule would never run: no run time is left before it"
        )
    return upcoming


def preview(schedule: ReportSchedule, now: datetime | None = None) -> list[RunTime]:
    """The next 5 runs of an active schedule (from nextRunAt); none while paused (nothing will
    run until it is resumed, and resuming computes them afresh) or once ended."""
    if schedule.status != ScheduleStatus.ACTIVE:
        return []
    rule = schedule.recurrence()
    if schedule.next_run_at:
        first = schedule.next_run_at
        runs = [first, *next_runs(rule, first, PREVIEW_RUNS - 1)]
    else:
        runs = next_runs(rule, now or utcnow(), PREVIEW_RUNS)
    return [RunTime(local=local_time(r, schedule.timezone), utc=r) for r in runs]
