"""HTTP shapes of alert evaluations: a run's (in the run history) and the one
`POST /schedules/{id}/evaluate` computes now."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.common.schemas import ApiModel
from app.reports.jobs.evaluation import AlertOutcome, AlertState, RunEvaluation
from app.reports.schedules.changes.schemas import ChangeOutcomeOut


class ConditionResultOut(ApiModel):
    metric: str
    label: str
    unit: str | None = None
    op: str | None = None
    value: float | None = None
    change: str | None = None
    by: float | None = None
    relative: bool = False
    versus: str | None = None
    measured: float | None = Field(description="The run's figure; null: it had no value")
    previous: float | None = Field(
        default=None,
        description="A change condition: the figure it compares with (the scope's previous "
        "evaluated run's, or the previous period's with `versus: previous-period`)",
    )
    amount: float | None = Field(
        default=None, description="A change condition: the change (in % when relative)"
    )
    met: bool
    recovered: bool = Field(description="False past the recovery margin")


class AlertOutcomeOut(ApiModel):
    state: AlertState = Field(description="fired, still-firing, recovered or not-met")
    match: str
    met: bool = Field(description="The conditions, combined by `match`, hold")
    conditions: list[ConditionResultOut]
    notified: bool = Field(description="Its messages were (or would be) planned")

    @classmethod
    def of(cls, outcome: AlertOutcome) -> AlertOutcomeOut:
        return cls(
            state=outcome.state,
            match=outcome.match,
            met=outcome.met,
            conditions=[ConditionResultOut(**c.model_dump()) for c in outcome.conditions],
            notified=outcome.notified,
        )


class RunEvaluationOut(ApiModel):
    evaluated_at: datetime
    alert: AlertOutcomeOut | None = None
    changes: ChangeOutcomeOut | None = Field(
        default=None, description="What changed since the last delivered run (change reports)"
    )

    @classmethod
    def of(cls, evaluation: RunEvaluation | None) -> RunEvaluationOut | None:
        if evaluation is None:
            return None
        alert = AlertOutcomeOut.of(evaluation.alert) if evaluation.alert else None
        changes = ChangeOutcomeOut.of(evaluation.changes)
        return cls(evaluated_at=evaluation.evaluated_at, alert=alert, changes=changes)


class MetricOut(ApiModel):
    key: str
    label: str
    value: float | None
    unit: str | None = None


class WouldSendOut(ApiModel):
    kind: str = Field(
        description="`report`, `alert` (the report, marked), `recovery`, `changes` (a change "
        'report), `unchanged` (its "no changes" notice) or `none`'
    )
    subject: str | None = None
    recipients: list[str] = Field(default_factory=list)
    webhooks: int = Field(default=0, description="Webhook endpoints that would be called")


class EvaluationOut(ApiModel):
    """What a run now would measure and send; nothing was sent and no state moved."""

    evaluated_at: datetime
    row_count: int
    metrics: list[MetricOut] = Field(description="The type's alertable metrics, measured now")
    alert: AlertOutcomeOut | None = Field(
        default=None, description="The alert as a run now would find it; null without an alert"
    )
    changes: ChangeOutcomeOut | None = Field(
        default=None,
        description="Change reports: what changed since the scope's last delivered run, as a "
        "run now would find it (nothing stored, the baseline not moved); null without them",
    )
    would_send: WouldSendOut
