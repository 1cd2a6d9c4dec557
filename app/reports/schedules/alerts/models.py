"""A schedule's alert: its conditions as stored and as the API takes and shows them, and the
alert state kept per scope of the schedule (one for audience `owner`, one per recipient scope
for audience `recipient`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from beanie import PydanticObjectId
from pydantic import BaseModel, Field

from app.common.schemas import ApiInput, ApiModel
from app.reports.jobs.evaluation import AlertState

MAX_CONDITIONS = 10


class Op(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class Change(StrEnum):
    DROP = "drop"
    RISE = "rise"


class Versus(StrEnum):
    PREVIOUS_RUN = "previous-run"  # the scope's previous evaluated run
    PREVIOUS_PERIOD = "previous-period"  # the same figure over the range just before the run's


class Match(StrEnum):
    ALL = "all"
    ANY = "any"


class AlertCondition(BaseModel):
    """Either a threshold (`op`, `value`) or a change (`change`, `by`, `relative`: `by` in % of
    the previous value) versus the previous run or the previous period (`versus`)."""

    metric: str
    op: Op | None = None
    value: float | None = None
    change: Change | None = None
    by: float | None = None
    relative: bool = False
    versus: Versus | None = None

    @property
    def is_change(self) -> bool:
        return self.change is not None


class AlertConfig(BaseModel):
    conditions: list[AlertCondition] = Field(default_factory=list)
    match: Match = Match.ALL
    recovery_margin: float = 0.0
    notify_recovery: bool = False


class ScopeAlertState(BaseModel):
    """Where one scope's alert stands after its last evaluated run."""

    firing: bool = False
    state: AlertState | None = None
    values: dict[str, float | None] = Field(default_factory=dict)  # the run's metrics
    job_id: PydanticObjectId | None = None
    evaluated_at: datetime | None = None


# -- HTTP shapes ---------------------------------------------------------------------------------

CONDITION_DESCRIPTION = (
    "A threshold `{metric, op, value}` (op `<`, `<=`, `>`, `>=`) or a change "
    "`{metric, change: drop|rise, by, relative?, versus: previous-run|previous-period}` "
    "(`relative`: `by` is a percentage of the previous value): versus the scope's previous run, "
    "or versus the same figure over the period just before the run's date range (report types "
    "with a date range only). `metric` is one of the report type's alertable metrics "
    "(GET /api/v1/reports/metadata/report-types/{key}, `alertableMetrics`)."
)


class AlertConditionIn(ApiInput):
    metric: str = Field(min_length=1, max_length=64, examples=["complianceRate"])
    op: Op | None = None
    value: float | None = Field(default=None, allow_inf_nan=False)
    change: Change | None = None
    by: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    relative: bool = False
    versus: Versus | None = Field(
        default=None,
        description="`previous-run` (the default with `change`): the scope's previous evaluated "
        "run; `previous-period`: the same figure over the range of the same length just before "
        "the run's date range, read at the run (types with a date range only)",
    )


class AlertIn(ApiInput):
    """Deliver only when the conditions become true (not met → met), and again only after
    they were false; `recoveryMargin` keeps a value hovering at the line from refiring;
    `notifyRecovery` sends a "back to normal" message when they recover."""

    conditions: list[AlertConditionIn] = Field(
        min_length=1, max_length=MAX_CONDITIONS, description=CONDITION_DESCRIPTION
    )
    match: Match = Field(default=Match.ALL, description="`all` conditions, or `any` of them")
    recovery_margin: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="How far past the line a value must come back to count as recovered: "
        "`x < v` recovers at x ≥ v + margin, `x <= v` at x > v + margin, `x > v` at "
        "x ≤ v − margin, `x >= v` at x < v − margin; a change of `by` recovers when the change "
        "is below by − margin",
    )
    notify_recovery: bool = Field(
        default=False, description="Send a 'back to normal' message when the alert recovers"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "conditions": [{"metric": "complianceRate", "op": "<", "value": 80}],
                    "match": "all",
                    "recoveryMargin": 2,
                    "notifyRecovery": True,
                }
            ]
        }
    }


class AlertConditionOut(ApiModel):
    metric: str
    op: Op | None = None
    value: float | None = None
    change: Change | None = None
    by: float | None = None
    relative: bool = False
    versus: Versus | None = None


class AlertOut(ApiModel):
    conditions: list[AlertConditionOut]
    match: Match
    recovery_margin: float
    notify_recovery: bool

    @classmethod
    def of(cls, config: AlertConfig | None) -> AlertOut | None:
        if config is None:
            return None
        return cls(
            conditions=[AlertConditionOut(**c.model_dump()) for c in config.conditions],
            match=config.match,
            recovery_margin=config.recovery_margin,
            notify_recovery=config.notify_recovery,
        )


class ScopeAlertOut(ApiModel):
    scope: str = Field(description="Which scope of the schedule (one per recipient scope)")
    firing: bool
    state: AlertState | None
    values: dict[str, float | None] = Field(description="The metrics of its last evaluated run")
    job_id: str | None = None
    evaluated_at: datetime | None = None

    @classmethod
    def all_of(cls, states: dict[str, ScopeAlertState]) -> list[ScopeAlertOut]:
        return [
            cls(
                scope=key,
                firing=s.firing,
                state=s.state,
                values=s.values,
                job_id=str(s.job_id) if s.job_id else None,
                evaluated_at=s.evaluated_at,
            )
            for key, s in sorted(states.items())
        ]
