"""Live worker processes, as they report themselves (for /readyz and operators)."""

from __future__ import annotations

from datetime import datetime

from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from app.common.time import utcnow


class WorkerProcess(Document):
    worker_id: str
    host: str
    pid: int
    queues: list[str]
    started_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    running_jobs: int = 0

    class Settings:
        name = "workers"
        indexes = [
            IndexModel([("worker_id", ASCENDING)], unique=True),
            # Records of workers that stopped reporting disappear on their own.
            IndexModel([("last_seen_at", ASCENDING)], expireAfterSeconds=120),
        ]
