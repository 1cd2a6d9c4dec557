"""The shared adapters (database, queue, storage), opened and closed together.

Both the API and the worker start through here, so they connect the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from beanie import Document

from app.config import Settings
from app.db import Database
from app.queue import Queue
from app.storage import Storage, build_storage


class StartupError(Exception):
    """A dependency is misconfigured or unreachable; the message says which and why."""


@dataclass
class Resources:
    settings: Settings
    database: Database
    queue: Queue
    storage: Storage

    @classmethod
    async def open(cls, settings: Settings, *, documents: Sequence[type[Document]]) -> Resources:
        """Connects the adapters; `documents` are the stored document types (`app.documents`),
        handed in by the entry point."""
        database = Database(settings)
        try:
            await database.connect(documents)
        except Exception as exc:
            await database.close()
            raise StartupError(
                f"MongoDB at {settings.mongodb_url} is not reachable: {_short(exc)}"
            ) from exc
        try:
            queue = await asyncio.wait_for(Queue.connect(settings), timeout=10)
            await queue.ping()
        except Exception as exc:
            await database.close()
            raise StartupError(
                f"Redis at {settings.redis_url} is not reachable: {_short(exc)}"
            ) from exc
        try:
            storage = await build_storage(settings)
            await storage.ping()
        except Exception as exc:
            await database.close()
            await queue.close()
            raise StartupError(
                f"storage backend {settings.storage_backend.value!r} is not usable: {_short(exc)}"
            ) from exc
        return cls(settings=settings, database=database, queue=queue, storage=storage)

    async def close(self) -> None:
        for closer in (self.storage.close, self.queue.close, self.database.close):
            try:
                await closer()
            except Exception:  # closing is best effort
                pass


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
