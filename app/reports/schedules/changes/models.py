"""Where a schedule's change baseline stands, per scope (on the schedule, `change_baselines`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from app.reports.schedules.changes.tracker import Baseline


class ScopeBaseline(BaseModel):
    """The last delivered run of a scope: its fingerprints' storage key, job and time."""

    key: str
    job_id: str
    taken_at: datetime
    rows: int = 0
    moved_at: datetime | None = None

    def baseline(self) -> Baseline:
        return Baseline(key=self.key, job_id=self.job_id, taken_at=self.taken_at)
