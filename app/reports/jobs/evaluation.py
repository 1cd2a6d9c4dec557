"""What a scheduled run's commit decided besides its file, stored on the job (`evaluation`):
the alert's state with the measured values. Change counts (what rows were added, left or
changed since the last delivered run) are meant to sit beside `alert` in the same record."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class AlertState(StrEnum):
    FIRED = "fired"  # the conditions became true: the run was delivered
    STILL_FIRING = "still-firing"  # true before and still true: nothing sent
    RECOVERED = "recovered"  # false again (past the recovery margin): "back to normal"
    NOT_MET = "not-met"  # false before and still false: nothing sent


class ConditionResult(BaseModel):
    """One condition as it was measured on the run."""

    metric: str
    label: str = ""
    unit: str | None = None
    op: str | None = None  # threshold: < <= > >=
    value: float | None = None
    change: str | None = None  # period over period: drop | rise
    by: float | None = None
    relative: bool = False
    versus: str | None = None
    measured: float | None = None  # the run's figure (None: the summary had no value)
    previous: float | None = None  # the figure of the previous evaluated run (change only)
    amount: float | None = None  # the change measured (in % of `previous` when relative)
    met: bool = False  # the condition holds
    recovered: bool = True  # it is false past the recovery margin


class AlertOutcome(BaseModel):
    state: AlertState
    match: str = "all"
    met: bool = False  # the conditions (combined by `match`) hold
    conditions: list[ConditionResult] = Field(default_factory=list)
    notified: bool = False  # the run's messages were planned (fired, or recovered when asked)
    scope_key: str = ""


class RunEvaluation(BaseModel):
    evaluated_at: datetime
    alert: AlertOutcome | None = None
