"""MongoDB: one AsyncMongoClient (PyMongo's async API; Motor is end-of-life) and Beanie."""

from __future__ import annotations

from typing import Any

from beanie import Document, init_beanie
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from app.config import Settings


def all_documents() -> list[type[Document]]:
    """Every stored document type. A new domain adds its documents here."""
    from app.learning_events.models import LearningEvent
    from app.lookups.models import LookupValue
    from app.platform.models import PLATFORM_DOCUMENTS
    from app.reports.jobs.models import IdempotencyRecord, ReportJob
    from app.runtime.models import WorkerProcess

    documents: list[type[Document]] = [
        *PLATFORM_DOCUMENTS,
        LookupValue,
        LearningEvent,
        WorkerProcess,
        ReportJob,
        IdempotencyRecord,
    ]
    try:
        from app.reports.templates.models import ReportTemplate

        documents.append(ReportTemplate)
    except ImportError:  # pragma: no cover - domain not installed yet
        pass
    try:
        from app.reports.schedules.models import ReportSchedule

        documents.append(ReportSchedule)
    except ImportError:  # pragma: no cover
        pass
    return documents


_HEARTBEAT_TIMEOUT_MS = 20_000  # PyMongo's default connectTimeoutMS


class Database:
    """Owns the client; `connect` checks the server answers before anything else starts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.mongodb_url,
            serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
            # Also the monitor's heartbeat timeout: when a heartbeat times out the driver marks
            # the server unknown and interrupts every operation in flight, so a server busy for
            # a few seconds (one sorting a million rows) must not cancel a long report query.
            # Unreachable servers still fail fast through serverSelectionTimeoutMS.
            connectTimeoutMS=max(settings.mongodb_timeout_ms, _HEARTBEAT_TIMEOUT_MS),
            tz_aware=True,
            uuidRepresentation="standard",
        )

    @property
    def db(self) -> AsyncDatabase[dict[str, Any]]:
        return self.client[self.settings.mongodb_db]

    async def connect(self) -> None:
        await self.client.admin.command("ping")
        await init_beanie(database=self.db, document_models=all_documents())

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    async def close(self) -> None:
        await self.client.close()
