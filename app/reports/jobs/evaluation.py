"""What a scheduled run's commit decided besides its file, stored on the job (`evaluation`):
the alert's state with the measured values, and the change counts (what rows were added, left
or changed since the last delivered run of the same schedule and scope)."""

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
    previous: float | None = None  # a change: the previous evaluated run's or period's figure
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


class ChangeOutcome(BaseModel):
    """A run compared with the last delivered run of its schedule and scope (its baseline)."""

    first_run: bool = False  # no baseline yet: every row is "added", this run is the baseline
    since: datetime | None = None  # when the baseline's run was made
    baseline_job_id: str | None = None
    added: int = 0
    left: int = 0
    changed: int = 0
    unchanged: int = 0
    transitions: dict[str, int] = Field(default_factory=dict)  # e.g. newly-overdue: 7
    summary: str = ""  # the counts in words
    lines: list[str] = Field(default_factory=list)  # the first changes, before -> after
    file_key: str | None = None  # every change, as CSV (beside the run's file)
    baseline_key: str | None = None  # this run's fingerprints (the next baseline)
    baseline_moved: bool = False  # the run was delivered: it is the baseline now

    @property
    def nothing_changed(self) -> bool:
        return not self.first_run and not (self.added or self.left or self.changed)


class RunEvaluation(BaseModel):
    evaluated_at: datetime
    alert: AlertOutcome | None = None
    changes: ChangeOutcome | None = None
