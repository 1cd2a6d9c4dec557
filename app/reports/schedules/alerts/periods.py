"""`versus: previous-period`: a change condition compared with the same figure over the period
just before the run's date range.

A run's resolved parameters hold its range as whole local days in its timezone (`dateRange`:
from, to, start, end, timezone). The previous period is the range of the same number of days
that ends the day before it starts, in the same timezone (its local midnights turned into UTC
again, so a daylight-saving change inside it is kept): a "last 7 days" run on 8 December
(2–8 December) compares with 25 November – 1 December. A month-like range (last-month,
this-quarter, year-to-date) is compared with the same number of days before it, not with the
calendar period before it: November (30 days) with 2–31 October. Everything else (the filters,
the scope, the moment the report is "as of") stays the run's.

The previous period's figures come from the report type's own read and summarizer (no file),
only when one of the schedule's conditions asks for them: in the worker before the run's
completing commit (`for_run`), and in evaluate within its preview budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from app.reports.dates import days_to_range
from app.reports.jobs.models import ReportJob
from app.reports.schedules.alerts.gate import metric_values
from app.reports.schedules.alerts.models import AlertConfig, Versus
from app.reports.schedules.models import ReportSchedule
from app.reports.types import AnyReportDefinition, get_report_type
from app.security import DataScope

Values = dict[str, float | None]


def has_date_range(report_type: str) -> bool:
    """Whether the type's runs cover a date range (there is a period before it)."""
    return "date_range" in get_report_type(report_type).resolved_model.model_fields


def wants_previous_period(config: AlertConfig | None) -> bool:
    return config is not None and any(
        c.versus == Versus.PREVIOUS_PERIOD for c in config.conditions if c.is_change
    )


def previous_parameters(resolved: Mapping[str, Any]) -> dict[str, Any] | None:
    """`resolved` with its date range moved to the range of the same length just before it
    (None: the parameters have no date range)."""
    stored = resolved.get("dateRange")
    if not isinstance(stored, Mapping):
        return None
    try:
        first = date.fromisoformat(str(stored["from"]))
        last = date.fromisoformat(str(stored["to"]))
    except (KeyError, ValueError):
        return None
    timezone = str(stored.get("timezone") or resolved.get("timezone") or "UTC")
    days = (last - first).days + 1
    before = days_to_range(first - timedelta(days=days), first - timedelta(days=1), timezone)
    return {**resolved, "dateRange": before.to_document()}


async def period_values(
    definition: AnyReportDefinition,
    resolved: Mapping[str, Any],
    scope: DataScope,
    batch_size: int,
) -> Values | None:
    """The summary figures of the period before `resolved`'s range, in the same scope: the
    type's read and summarizer, no file (None: no date range)."""
    previous = previous_parameters(resolved)
    if previous is None:
        return None
    summarizer = definition.summarizer(previous)
    async for batch in definition.fetch(previous, scope, batch_size):
        summarizer.add(batch)
    return metric_values(summarizer.figures())


async def for_run(job: ReportJob, batch_size: int) -> Values | None:
    """A scheduled run's previous-period figures, when its schedule's alert asks for them
    (read before the completing commit, which evaluates the alert with them)."""
    if job.schedule_id is None or job.test_run:
        return None
    raw = await ReportSchedule.get_pymongo_collection().find_one(
        {"_id": job.schedule_id}, {"alert": 1}
    )
    if raw is None or not raw.get("alert"):
        return None
    if not wants_previous_period(AlertConfig.model_validate(raw["alert"])):
        return None
    return await period_values(
        get_report_type(job.report_type),
        dict(job.resolved_parameters or {}),
        DataScope.from_document(job.scope or {}),
        batch_size,
    )
