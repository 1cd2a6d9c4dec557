"""A sender in a process of its own, for the crash tests: `python -m tests.helpers.delivery_crash_child
'<settings JSON>'` connects to the test database and runs the delivery loop until killed."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from beanie import init_beanie
from pymongo import AsyncMongoClient

from app.config import Settings
from app.reports.deliveries.models import DELIVERY_DOCUMENTS
from app.reports.deliveries.sender import run_sender
from app.storage import Storage, build_storage


@dataclass
class ChildResources:
    settings: Settings
    storage: Storage


async def main(settings: Settings) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True
    )
    await init_beanie(database=client[settings.mongodb_db], document_models=DELIVERY_DOCUMENTS)
    resources = ChildResources(settings=settings, storage=await build_storage(settings))
    print("ready", flush=True)
    await run_sender(resources, worker_id="child", stop=asyncio.Event(), interval_seconds=0.2)


if __name__ == "__main__":
    asyncio.run(main(Settings.model_validate_json(sys.argv[1])))
