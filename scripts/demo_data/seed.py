"""`seed_demo(...)`: writes the generated organisation in bulk."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import IndexModel

from app.common.time import utcnow
from app.learning_events.models import LearningEvent
from app.lookup_sources import provide_lookup_sources
from app.lookups.seed import seed_lookups
from app.platform.models import Course, Department, Enrollment, User
from scripts.demo_data.catalogue import Doc
from scripts.demo_data.generator import generate


@dataclass
class SeedReport:
    counts: dict[str, int]
    seconds: float
    peak_rss_mb: float

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


PLATFORM_COLLECTIONS = ("departments", "users", "courses", "enrollments", "learning_events")


def _collections() -> dict[str, Any]:
    return {
        "departments": Department.get_pymongo_collection(),
        "users": User.get_pymongo_collection(),
        "courses": Course.get_pymongo_collection(),
        "enrollments": Enrollment.get_pymongo_collection(),
        "learning_events": LearningEvent.get_pymongo_collection(),
    }


async def existing_users() -> int:
    return int(await User.get_pymongo_collection().count_documents({}, limit=1))


async def reset_platform_data() -> None:
    """Empties the platform collections and learning events (indexes kept)."""
    for collection in _collections().values():
        await collection.delete_many({})


# What an index's description holds that is not an option of creating it.
_NOT_OPTIONS = ("key", "v", "ns")


async def drop_secondary_indexes(collection: Any) -> list[IndexModel]:
    """Drops an (empty) collection's indexes but `_id`, returning them as they were, so a bulk
    load writes the documents only and each index is then built once, in order, over all of
    them: several times faster than maintaining every index on every insert."""
    info: dict[str, dict[str, Any]] = await collection.index_information()
    models = [
        IndexModel(
            spec["key"], name=name, **{k: v for k, v in spec.items() if k not in _NOT_OPTIONS}
        )
        for name, spec in info.items()
        if name != "_id_"
    ]
    if models:
        await collection.drop_indexes()
    return models


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


async def seed_demo(
    scale: int,
    seed: int = 42,
    *,
    now: datetime | None = None,
    batch_size: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> SeedReport:
    """Generates and inserts the demo organisation. `progress(enrollments, events)` is called
    after each batch; `on_start(total_enrollments)` once before."""
    started = time.perf_counter()
    now = now or utcnow().replace(minute=0, second=0, microsecond=0)
    provide_lookup_sources()
    await seed_lookups()
    data = generate(scale, seed, now)
    coll = _collections()
    counts = dict.fromkeys(PLATFORM_COLLECTIONS, 0)

    async def insert(name: str, docs: list[Doc]) -> None:
        for start in range(0, len(docs), batch_size):
            chunk = docs[start : start + batch_size]
            await coll[name].insert_many(chunk, ordered=False)
            counts[name] += len(chunk)

    await insert("departments", data.departments)
    await insert("users", data.users)
    await insert("courses", data.courses)
    if on_start:
        on_start(data.enrollments_target)
    # The two large collections are loaded without their secondary indexes when they start
    # empty (a fresh database or --reset), and the indexes are built after the load, also when
    # it fails (and the app's start-up creates any that are missing). Sequential on purpose:
    # the local MongoDB-compatible server gets slower with concurrent bulk inserts.
    deferred: dict[str, list[IndexModel]] = {}
    for name in ("enrollments", "learning_events"):
        if await coll[name].estimated_document_count() == 0:
            deferred[name] = await drop_secondary_indexes(coll[name])
    try:
        for enrollments, events in data.stream(batch_size):
            await insert("enrollments", enrollments)
            await insert("learning_events", events)
            if progress:
                progress(len(enrollments), len(events))
    finally:
        for name, models in deferred.items():
            if models:
                await coll[name].create_indexes(models)
    return SeedReport(
        counts=counts, seconds=time.perf_counter() - started, peak_rss_mb=_peak_rss_mb()
    )
