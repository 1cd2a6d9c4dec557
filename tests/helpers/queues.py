"""The API on a Redis of a test's own (one it can kill or stop), sharing the session's
database and storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app.config import Settings
from app.main import create_app
from app.queue import Queue
from app.runtime.resources import Resources


@asynccontextmanager
async def api_on_redis(
    settings: Settings, resources: Resources, port: int
) -> AsyncIterator[httpx.AsyncClient]:
    other = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    queue = await Queue.connect(other)
    own = Resources(
        settings=settings, database=resources.database, queue=queue, storage=resources.storage
    )
    application = create_app(settings, resources=own)
    try:
        async with (
            application.router.lifespan_context(application),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application), base_url="http://t"
            ) as c,
        ):
            yield c
    finally:
        await queue.close()
