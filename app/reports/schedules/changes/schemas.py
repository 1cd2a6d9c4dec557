"""HTTP shapes of change reports: a schedule's `changes` option, its baselines, and the counts
a run (or `POST /schedules/{id}/evaluate`) found."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.common.schemas import ApiInput, ApiModel
from app.reports.deliveries.models import ChangesConfig, ChangesMode, EmptyResultPolicy
from app.reports.jobs.evaluation import ChangeOutcome
from app.reports.schedules.changes.models import ScopeBaseline


class ChangesIn(ApiInput):
    """Compare each run with the last delivered run of the same schedule and scope, by the
    type's row key (each report type's metadata lists it: `changeReport`)."""

    mode: ChangesMode = Field(
        default=ChangesMode.BOTH,
        description="`both`: the full report, its messages saying what changed; `changes`: "
        "only the changes (the messages carry the list of changes, CSV, instead of the report)",
    )
    unchanged: EmptyResultPolicy = Field(
        default=EmptyResultPolicy.NOTICE,
        description="Nothing added, left or changed since the last delivered run: `skip` "
        '(nothing is sent), `notice` (a short "no changes" message) or `send` (as usual)',
    )

    def config(self) -> ChangesConfig:
        return ChangesConfig(mode=self.mode, unchanged=self.unchanged)


class ChangesOut(ApiModel):
    mode: ChangesMode
    unchanged: EmptyResultPolicy

    @classmethod
    def of(cls, config: ChangesConfig | None) -> ChangesOut | None:
        return None if config is None else cls(mode=config.mode, unchanged=config.unchanged)


class ScopeBaselineOut(ApiModel):
    scope: str = Field(description="Which scope of the schedule (one per recipient scope)")
    job_id: str = Field(description="The last delivered run, which the next run is compared to")
    taken_at: datetime
    rows: int

    @classmethod
    def all_of(cls, baselines: dict[str, ScopeBaseline]) -> list[ScopeBaselineOut]:
        return [
            cls(scope=key, job_id=b.job_id, taken_at=b.taken_at, rows=b.rows)
            for key, b in sorted(baselines.items())
        ]


class ChangeOutcomeOut(ApiModel):
    first_run: bool = Field(description="No delivered run before: every row is added")
    since: datetime | None = Field(description="When the compared (last delivered) run ran")
    added: int
    left: int
    changed: int
    unchanged: int
    transitions: dict[str, int] = Field(description="e.g. `newly-overdue`, `completed`")
    summary: str = Field(description="The counts in words, as the messages say them")
    lines: list[str] = Field(description="The first changes, before → after")
    baseline_moved: bool = Field(description="The run was delivered and is the baseline now")

    @classmethod
    def of(cls, outcome: ChangeOutcome | None) -> ChangeOutcomeOut | None:
        if outcome is None:
            return None
        return cls(
            **outcome.model_dump(
                include={
                    "first_run",
                    "since",
                    "added",
                    "left",
                    "changed",
                    "unchanged",
                    "transitions",
                    "summary",
                    "lines",
                    "baseline_moved",
                }
            )
        )
