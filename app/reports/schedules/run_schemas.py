"""HTTP shape of a schedule's run: its job with what the run planned and decided."""

from __future__ import annotations

from pydantic import Field

from app.reports.deliveries.schemas import DeliveryOut, SkippedOut
from app.reports.jobs.schemas import JobOut
from app.reports.schedules.alerts.schemas import RunEvaluationOut


class ScheduleRunOut(JobOut):
    """A run of the schedule: its job, with the deliveries it planned and who its audience
    did not reach (a department without a manager)."""

    deliveries: list[DeliveryOut] = Field(default_factory=list)
    skipped: list[SkippedOut] = Field(default_factory=list)
    evaluation: RunEvaluationOut | None = Field(
        default=None,
        description="What its completing commit decided: the alert's state with the measured "
        "values (null: the schedule had no alert then, or the run did not complete)",
    )
