"""Where a schedule's change baseline stands, per scope (on the schedule, `change_baselines`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel


@dataclass(frozen=True)
class Baseline:
    """The run a new run is compared with: its fingerprints' key, job and time."""

    key: str
    job_id: str
    taken_at: datetime


class ScopeBaseline(BaseModel):
    """The last delivered run of a scope: its fingerprints' storage key, job and time."""

    key: str
    job_id: str
    taken_at: datetime
    rows: int = 0
    moved_at: datetime | None = None

    def baseline(self) -> Baseline:
        return Baseline(key=self.key, job_id=self.job_id, taken_at=self.taken_at)
