"""HTTP shape of a schedule's run: its job with what the run planned and decided."""

from __future__ import annotations

from pydantic import Field

from app.reports.deliveries.schemas import DeliveryOut, SkippedRecipientOut
from app.reports.jobs.schemas import JobOut
from app.reports.schedules.alerts.schemas import RunEvaluationOut


class ScheduleRunOut(JobOut):
    """A run of the schedule: its job, with the deliveries it planned, who it left out and
    what its alert decided."""

    deliveries: list[DeliveryOut] = Field(default_factory=list)
    skipped_recipients: list[SkippedRecipientOut] = Field(
        default_factory=list,
        description="Who this run left out, and why (listed on the first run of a slot)",
    )
    evaluation: RunEvaluationOut | None = Field(
        default=None,
        description="What its completing commit decided: the alert's state with the measured "
        "values (null: the schedule had no alert then, or the run did not complete)",
    )
