"""MongoDB: one AsyncMongoClient (PyMongo's async API; Motor is end-of-life) and Beanie."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from beanie import Document, init_beanie
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from app.config import Settings

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

    async def connect(self, documents: Sequence[type[Document]]) -> None:
        """Checks the server answers, then registers `documents` (and their indexes) with
        Beanie."""
        await self.client.admin.command("ping")
        await init_beanie(database=self.db, document_models=list(documents))

    def reachable(self) -> bool:
        """Whether the driver currently knows a server it can write to (no I/O: what its
        monitoring last saw)."""
        return bool(self.client.topology_description.has_writable_server())

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    async def close(self) -> None:
        await self.client.close()
