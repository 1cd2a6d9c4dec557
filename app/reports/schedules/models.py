"""ReportSchedule (API-ISS-028): a report that runs by itself on a recurring rule.

The scheduler tick turns every due schedule into exactly one job per scheduled time (the
unique index on report_jobs (schedule_id, scheduled_for)) and moves `next_run_at` on with a
compare-and-set, so any number of workers can tick at once.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from beanie import PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from app.common.documents import TimestampedDocument
from app.common.pagination import SortField, Sorting, created_at, sort_indexes
from app.reports.deliveries.models import (
    Audience,
    ChangesConfig,
    DeliveryConfig,
    DeliveryMode,
    EmptyResultPolicy,
    Recipient,
)
from app.reports.jobs.models import Requester
from app.reports.schedules.alerts.models import AlertConfig, ScopeAlertState
from app.reports.schedules.changes.models import ScopeBaseline
from app.reports.schedules.recurrence import Frequency, Recurrence

# Skipped slots counted per downtime: `missed_runs` grows by at most this much at once, so after
# a longer downtime it is a lower bound ("500+"). Counting 500 slots takes some 60 ms.
MAX_COUNTED_MISSED = 500


class ScheduleStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class MissedRunPolicy(StrEnum):
    SKIP = "skip"
    RUN_ONCE = "run-once"


class Unsubscribed(BaseModel):
    """A recipient who left the schedule through the unsubscribe link of one of its e-mails;
    listing them again needs the owner's explicit `reinvite`."""

    key: str  # `user:<id>` or `email:<address>` (Recipient.key())
    user_id: str | None = None
    address: str | None = None
    at: datetime
    told_at: datetime | None = None  # when the owner's digest named them


SCHEDULE_SORTS = Sorting(
    (
        created_at("the schedule"),
        SortField("name", "name", "string", "its name, by code point (upper case before lower)"),
        SortField(
            "nextRunAt",
            "next_run_at",
            "datetime",
            "its next run (none: first ascending, last descending)",
            nullable=True,
        ),
        SortField(
            "lastRunAt",
            "last_run_at",
            "datetime",
            "its last run (never run: first ascending, last descending)",
            nullable=True,
        ),
    ),
    default="-createdAt",
)


class DepartmentManagers(BaseModel):
    """Audience `department-managers`: whose managers the schedule bursts to."""

    department_id: PydanticObjectId
    include_sub_departments: bool = True


class ReportSchedule(TimestampedDocument):
    name: str
    description: str | None = None
    # Either a template (run as it is when the schedule fires, or as it was at the pinned
    # `template_version`, with `parameters` / `format` as overrides) or an inline report
    # definition.
    template_id: PydanticObjectId | None = None
    template_version: int | None = None  # None: the template's newest version
    report_type: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    format: str | None = None  # None: the template's format
    # The locale of its runs (app.i18n codes); None: the template's, else the owner's.
    locale: str | None = None
    columns: list[str] | None = None  # the columns of its files; None: the template's, else all

    frequency: Frequency
    time_of_day: str = "00:00"  # HH:MM local
    day_of_week: int | None = None  # ISO 1 = Monday ... 7 = Sunday
    day_of_month: int | None = None  # 1..31, clamped to the month's last day
    cron_expression: str | None = None
    timezone: str = "UTC"
    start_date: str | None = None  # YYYY-MM-DD local (BSON has no date-only type)
    end_date: str | None = None

    status: ScheduleStatus = ScheduleStatus.ACTIVE
    paused_reason: str | None = None
    paused_at: datetime | None = None
    ended_at: datetime | None = None
    # The owner's identity as it was at creation; re-checked against `users` at each run.
    owner: Requester
    # As given (platform user ids and / or addresses); `delivery_recipients` holds them
    # validated, with their addresses (`app.reports.deliveries.recipients`).
    recipients: list[str] = Field(default_factory=list)
    delivery_recipients: list[Recipient] = Field(default_factory=list)
    delivery: DeliveryMode = DeliveryMode.BOTH
    empty_result: EmptyResultPolicy = EmptyResultPolicy.SEND
    audience: Audience = Audience.OWNER
    department_managers: DepartmentManagers | None = None  # audience department-managers
    # The departments without a manager the owner was last told about (told again on a change).
    burst_skipped_told: list[str] = Field(default_factory=list)
    webhook_endpoint_ids: list[PydanticObjectId] = Field(default_factory=list)
    missed_run_policy: MissedRunPolicy = MissedRunPolicy.SKIP
    # Threshold alerts (alerts/): deliver only when the conditions become true; the state of
    # each scope is moved by its runs' completing commits (alerts/gate.py).
    alert: AlertConfig | None = None
    alert_states: dict[str, ScopeAlertState] = Field(default_factory=dict)
    # Change reports (changes/): each scope's baseline, moved by its delivered runs' commits.
    changes: ChangesConfig | None = None
    change_baselines: dict[str, ScopeBaseline] = Field(default_factory=dict)

    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_job_id: PydanticObjectId | None = None
    last_scheduled_for: datetime | None = None
    consecutive_failures: int = 0
    last_outcome_job_id: PydanticObjectId | None = None
    missed_runs: int = 0
    last_missed_at: datetime | None = None
    unsubscribed: list[Unsubscribed] = Field(default_factory=list)
    unsubscribe_digest_at: datetime | None = None  # the owner's last digest of unsubscribes

    class Settings:
        name = "report_schedules"
        indexes = [
            IndexModel([("status", ASCENDING), ("next_run_at", ASCENDING)]),
            IndexModel([("template_id", ASCENDING), ("status", ASCENDING)]),
            # The list: the owner's schedules (everyone's for admins).
            *sort_indexes(SCHEDULE_SORTS, ("owner.user_id",), ()),
        ]

    def recurrence(self) -> Recurrence:
        hour, minute = (int(p) for p in self.time_of_day.split(":"))
        return Recurrence(
            frequency=self.frequency,
            timezone=self.timezone,
            time_of_day=time(hour, minute),
            day_of_week=self.day_of_week,
            day_of_month=self.day_of_month,
            cron_expression=self.cron_expression,
            start_date=date.fromisoformat(self.start_date) if self.start_date else None,
            end_date=date.fromisoformat(self.end_date) if self.end_date else None,
        )

    def delivery_config(self, recipients: list[Recipient] | None = None) -> DeliveryConfig:
        """What a run of the schedule delivers, to `recipients` (default: all of them)."""
        return DeliveryConfig(
            mode=self.delivery,
            empty_result=self.empty_result,
            recipients=self.delivery_recipients if recipients is None else recipients,
            webhook_endpoint_ids=self.webhook_endpoint_ids,
            title=self.name,
            notify_owner_on_failure=True,
            changes=self.changes,
        )
