"""HTTP shapes of report schedules."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field, field_validator

from app.common.schemas import ApiInput, ApiModel
from app.i18n import LocaleCode, supported_locales
from app.lookups.codes import (
    FormatCode,
    FormatValue,
    FrequencyCode,
    FrequencyValue,
    ReportTypeCode,
    ReportTypeValue,
)
from app.reports.dates import BoundedDate
from app.reports.deliveries.models import (
    Audience,
    DeliveryMode,
    EmptyResultPolicy,
)
from app.reports.deliveries.schemas import WebhookOut
from app.reports.jobs.schemas import ColumnKeys
from app.reports.schedules.alerts.models import AlertOut, ScopeAlertOut
from app.reports.schedules.changes.schemas import ChangesOut, ScopeBaselineOut
from app.reports.schedules.models import (
    MAX_COUNTED_MISSED,
    MissedRunPolicy,
    ReportSchedule,
    ScheduleStatus,
)
from app.reports.schedules.recipient_schemas import (
    RECIPIENTS_DESCRIPTION,
    DeliveryFields,
    DepartmentManagersIn,
)
from app.reports.schedules.recurrence import (
    check_time_of_day,
    check_timezone,
    parse_day_of_week,
)

SCHEDULE_COLUMNS_DESCRIPTION = (
    "The columns of its files, by key, in order (an unknown or repeated key is a 422 naming "
    "`columns[i]`). Omitted or null: the template's choice, else every column"
)
LOCALE_DESCRIPTION = (
    "The language and formats of its files and e-mails: one of "
    f"{', '.join(supported_locales())}. A recipient who is a platform user with a locale of "
    "their own gets the e-mail in theirs. Omitted or null: the template's, else the owner's"
)


class _Timing(ApiInput):
    frequency: FrequencyCode | None = None
    time_of_day: str | None = Field(
        default=None, description="HH:MM local time", examples=["07:30"]
    )
    day_of_week: int | str | None = Field(
        default=None, description="weekly: 1 = Monday … 7 = Sunday, or a day name"
    )
    day_of_month: int | None = Field(
        default=None, ge=1, le=31, description="monthly / quarterly: 1–31, clamped to month end"
    )
    cron_expression: str | None = Field(
        default=None,
        max_length=120,
        description="cron: five fields, local time",
        examples=["0 7 * * 1-5"],
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA timezone the timing is in",
        examples=["Europe/Berlin"],
    )
    start_date: BoundedDate | None = Field(
        default=None, description="First local day a run may happen"
    )
    end_date: BoundedDate | None = Field(
        default=None, description="Last local day a run may happen"
    )

    @field_validator("day_of_week", mode="before")
    @classmethod
    def _day_of_week(cls, value: Any) -> int | None:
        return parse_day_of_week(value)

    @field_validator("time_of_day")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        return check_time_of_day(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return check_timezone(value)


class ScheduleCreate(_Timing, DeliveryFields):
    """A recurring report: `templateId` (optionally with `parameters` / `format` overrides) or
    an inline `reportType` + `parameters` + `format`. Frequencies daily, weekly, monthly and
    quarterly need `timeOfDay` (HH:MM, local); weekly also `dayOfWeek` (1 = Monday … 7 =
    Sunday, or a name); monthly and quarterly also `dayOfMonth` (1–31; a day past the month's
    end means its last day: 31 runs on 30 April and on 28 or 29 February). Quarterly runs in
    January, April, July and October. `cron` needs `cronExpression` (five fields, evaluated in
    `timezone`). A local time skipped by a daylight-saving change runs when the clocks jump
    (02:30 -> 03:00); a repeated local time runs once, at its first occurrence."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    template_id: str | None = Field(default=None, description="Run this template")
    template_version: int | None = Field(
        default=None,
        ge=1,
        description="Run this version of the template (one it has); absent or null: its newest "
        "version at each run",
    )
    report_type: ReportTypeCode | None = Field(default=None, description="Inline report type")
    format: FormatCode | None = Field(default=None, description="Required without templateId")
    locale: LocaleCode | None = Field(default=None, description=LOCALE_DESCRIPTION)
    parameters: dict[str, Any] | None = Field(
        default=None,
        description="Inline parameters, or overrides merged over the template's",
    )
    columns: ColumnKeys | None = Field(
        default=None, max_length=100, description=SCHEDULE_COLUMNS_DESCRIPTION
    )
    frequency: FrequencyCode = Field(description="daily, weekly, monthly, quarterly or cron")
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Berlin"])
    missed_run_policy: MissedRunPolicy = Field(
        default=MissedRunPolicy.SKIP,
        description="After downtime: `skip` missed runs (only the next one happens) or "
        "`run-once` (one run for the latest missed time)",
    )
    recipients: list[str] = Field(
        default_factory=list, max_length=1000, description=RECIPIENTS_DESCRIPTION
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "name": "Weekly compliance, Monday 07:30",
                    "reportType": "compliance-status",
                    "format": "xlsx",
                    "parameters": {"timezone": "Europe/Berlin"},
                    "frequency": "weekly",
                    "dayOfWeek": 1,
                    "timeOfDay": "07:30",
                    "timezone": "Europe/Berlin",
                    "missedRunPolicy": "run-once",
                    "recipients": ["64b7f0c2a1b2c3d4e5f60718", "team@example.org"],
                    "delivery": "both",
                    "emptyResult": "notice",
                    "audience": "owner",
                    "webhooks": [{"url": "https://hooks.example.com/reports"}],
                }
            ]
        }
    }

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be blank")
        return value


class ScheduleUpdate(_Timing, DeliveryFields):
    """Only the fields sent change; changing the timing recomputes `nextRunAt`."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    template_version: int | None = Field(
        default=None,
        ge=1,
        description="Pin a version of the schedule's template; null: follow its newest version",
    )
    description: str | None = Field(default=None, max_length=2000)
    parameters: dict[str, Any] | None = None
    format: FormatCode | None = None
    locale: LocaleCode | None = Field(default=None, description=LOCALE_DESCRIPTION)
    columns: ColumnKeys | None = Field(
        default=None, max_length=100, description=SCHEDULE_COLUMNS_DESCRIPTION
    )
    missed_run_policy: MissedRunPolicy | None = None
    recipients: list[str] | None = Field(
        default=None, max_length=1000, description=RECIPIENTS_DESCRIPTION
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "timeOfDay": "06:00",
                    "recipients": ["a@example.org"],
                    "delivery": "link",
                    "emptyResult": "skip",
                }
            ]
        }
    }


class SchedulePause(ApiInput):
    reason: str | None = Field(default=None, max_length=500)

    model_config = {"json_schema_extra": {"examples": [{"reason": "Quarter-end freeze"}]}}


class RunTime(ApiModel):
    local: datetime = Field(description="In the schedule's timezone, with its UTC offset")
    utc: datetime


class UnsubscribedOut(ApiModel):
    """Someone who left the schedule with the unsubscribe link of one of its e-mails."""

    user_id: str | None = None
    address: str | None = None
    unsubscribed_at: datetime


class OwnerOut(ApiModel):
    user_id: str
    name: str


class ScheduleOut(ApiModel):
    id: str
    name: str
    description: str | None = None
    template_id: str | None = None
    template_version: int | None = Field(
        default=None,
        description="The template version every run uses; null: the newest at each run",
    )
    report_type: ReportTypeValue
    format: FormatValue | None = Field(description="null: the template's format")
    locale: str | None = Field(description="null: the template's, else the owner's locale")
    parameters: dict[str, Any] = Field(description="Inline parameters, or the template overrides")
    columns: list[str] | None = Field(
        default=None, description="The columns of its files; null: the template's, else all"
    )
    frequency: FrequencyValue
    time_of_day: str | None = None
    day_of_week: int | None = None
    day_of_month: int | None = None
    cron_expression: str | None = None
    timezone: str
    start_date: date | None = None
    end_date: date | None = None
    status: ScheduleStatus
    paused_reason: str | None = None
    paused_at: datetime | None = None
    owner: OwnerOut
    recipients: list[str] = Field(
        description="User ids and addresses that receive every run (by e-mail)"
    )
    delivery: DeliveryMode
    empty_result: EmptyResultPolicy
    audience: Audience
    department_managers: DepartmentManagersIn | None = None
    webhooks: list[WebhookOut] = Field(default_factory=list)
    unsubscribed: list[UnsubscribedOut] = Field(
        default_factory=list,
        description="Recipients who unsubscribed: no longer sent to; listing one again needs "
        "`reinvite`",
    )
    missed_run_policy: MissedRunPolicy
    alert: AlertOut | None = Field(default=None, description="Its alert; null: none")
    alert_state: list[ScopeAlertOut] = Field(
        default_factory=list,
        description="Where the alert stands in each scope after its last evaluated run",
    )
    changes: ChangesOut | None = Field(default=None, description="Change reports; null: none")
    change_baselines: list[ScopeBaselineOut] = Field(
        default_factory=list, description="Each scope's last delivered run (its baseline)"
    )
    next_run_at: datetime | None = Field(
        description="UTC; null while paused (resuming computes it afresh) and once ended"
    )
    next_runs: list[RunTime] = Field(description="The next 5 run times (empty unless active)")
    last_run_at: datetime | None = None
    last_job_id: str | None = None
    last_scheduled_for: datetime | None = None
    consecutive_failures: int
    missed_runs: int = Field(
        description="Runs skipped after downtime (by either missed-run policy), summed over "
        f"every downtime. One downtime adds at most {MAX_COUNTED_MISSED}, so after a longer one "
        f"this is a lower bound ({MAX_COUNTED_MISSED}+)."
    )
    created_at: datetime
    updated_at: datetime
    error: str | None = Field(
        default=None,
        description="Why this stored schedule cannot run under the current rules (its run "
        "times are then not shown); null when it is fine",
    )

    @classmethod
    def from_document(
        cls,
        doc: ReportSchedule,
        next_runs: list[RunTime],
        webhooks: list[WebhookOut] | None = None,
        *,
        error: str | None = None,
    ) -> ScheduleOut:
        return cls(
            id=str(doc.id),
            name=doc.name,
            description=doc.description,
            template_id=str(doc.template_id) if doc.template_id else None,
            template_version=doc.template_version,
            report_type=doc.report_type,
            format=doc.format,
            locale=doc.locale,
            parameters=doc.parameters,
            columns=doc.columns,
            frequency=doc.frequency.value,
            time_of_day=doc.time_of_day if doc.frequency != "cron" else None,
            day_of_week=doc.day_of_week,
            day_of_month=doc.day_of_month,
            cron_expression=doc.cron_expression,
            timezone=doc.timezone,
            start_date=date.fromisoformat(doc.start_date) if doc.start_date else None,
            end_date=date.fromisoformat(doc.end_date) if doc.end_date else None,
            status=doc.status,
            paused_reason=doc.paused_reason,
            paused_at=doc.paused_at,
            owner=OwnerOut(user_id=doc.owner.user_id, name=doc.owner.name),
            recipients=doc.recipients,
            delivery=doc.delivery,
            empty_result=doc.empty_result,
            audience=doc.audience,
            department_managers=DepartmentManagersIn(
                department_id=str(doc.department_managers.department_id),
                include_sub_departments=doc.department_managers.include_sub_departments,
            )
            if doc.department_managers
            else None,
            webhooks=webhooks or [],
            unsubscribed=[
                UnsubscribedOut(user_id=u.user_id, address=u.address, unsubscribed_at=u.at)
                for u in doc.unsubscribed
            ],
            missed_run_policy=doc.missed_run_policy,
            alert=AlertOut.of(doc.alert),
            alert_state=ScopeAlertOut.all_of(doc.alert_states),
            changes=ChangesOut.of(doc.changes),
            change_baselines=ScopeBaselineOut.all_of(doc.change_baselines),
            next_run_at=doc.next_run_at if doc.status == ScheduleStatus.ACTIVE else None,
            next_runs=next_runs,
            last_run_at=doc.last_run_at,
            last_job_id=str(doc.last_job_id) if doc.last_job_id else None,
            last_scheduled_for=doc.last_scheduled_for,
            consecutive_failures=doc.consecutive_failures,
            missed_runs=doc.missed_runs,
            created_at=doc.created_at,
            updated_at=doc.updated_at,
            error=error,
        )
