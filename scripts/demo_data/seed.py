"""`seed_demo(...)`: writes the generated organisation in bulk."""

from __future__ import annotations

import asyncio
import queue
import resource
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import encode
from bson.raw_bson import RawBSONDocument
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
    # The enrollments and events written (`load_seconds`), then their indexes built.
    load_seconds: float = 0.0
    index_seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def events_per_second(self) -> float:
        """Learning events written per second of the load (index builds not included)."""
        return self.counts["learning_events"] / self.load_seconds if self.load_seconds else 0.0


PLATFORM_COLLECTIONS = ("departments", "users", "courses", "enrollments", "learning_events")
LARGE_COLLECTIONS = ("enrollments", "learning_events")


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


async def _index_models(collection: Any) -> list[IndexModel]:
    """A collection's indexes but `_id`, as models that create them again."""
    info: dict[str, dict[str, Any]] = await collection.index_information()
    return [
        IndexModel(
            spec["key"], name=name, **{k: v for k, v in spec.items() if k not in _NOT_OPTIONS}
        )
        for name, spec in info.items()
        if name != "_id_"
    ]


async def drop_secondary_indexes(collection: Any) -> list[IndexModel]:
    """Drops an (empty) collection's indexes but `_id`, returning them as they were, so a bulk
    load writes the documents only and each index is then built once, in order, over all of
    them: several times faster than maintaining every index on every insert."""
    models = await _index_models(collection)
    if models:
        await collection.drop_indexes()
    return models


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def as_legacy(event: Doc) -> Doc:
    """An event in the shape stored before the denormalized ids (API-ISS-035): the course only
    as `payload.courseId` (text), no course / department / enrollment ids, and the old
    `COURSE_COMPLETED` spelling; what `scripts.backfill_events` repairs."""
    course_id = event.pop("course_id")
    del event["department_id"], event["enrollment_id"]
    event["payload"] = {**event["payload"], "courseId": str(course_id)}
    if event["type"] == "course-completed":
        event["type"] = "COURSE_COMPLETED"
    return event


# One batch ready to send: enrollments and events as encoded BSON.
_Encoded = tuple[list[RawBSONDocument], list[RawBSONDocument]]


def _encoded(batches: Iterator[tuple[list[Doc], list[Doc]]], legacy: bool) -> Iterator[_Encoded]:
    for enrollments, events in batches:
        if legacy:
            events = [as_legacy(e) for e in events]
        yield (
            [RawBSONDocument(encode(d)) for d in enrollments],
            [RawBSONDocument(encode(d)) for d in events],
        )


async def _ahead(batches: Iterator[_Encoded], depth: int = 2) -> AsyncGenerator[_Encoded]:
    """Runs `batches` in a thread, up to `depth` batches ahead of the consumer: the next batch is
    generated and encoded while the server writes the previous one. Memory stays bounded by
    `depth`; the order (and so the data) is the iterator's own."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ready.put(("batch", batch), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put(("error", exc))

    worker = threading.Thread(target=produce, name="demo-data-generator", daemon=True)
    worker.start()
    try:
        while True:
            try:  # a bounded wait, so no thread is left waiting when the consumer stops
                kind, item = await asyncio.to_thread(ready.get, True, 0.5)
            except queue.Empty:
                continue
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.01)


async def seed_demo(
    scale: int,
    seed: int = 42,
    *,
    now: datetime | None = None,
    batch_size: int = 10_000,
    legacy_events: bool = False,
    progress: Callable[[int, int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> SeedReport:
    """Generates and inserts the demo organisation. `progress(enrollments, events)` is called
    after each batch; `on_start(total_enrollments)` once before. `legacy_events` writes the
    learning events in their pre-denormalization shape (`as_legacy`)."""
    started = time.perf_counter()
    now = now or utcnow().replace(minute=0, second=0, microsecond=0)
    provide_lookup_sources()
    await seed_lookups()
    data = generate(scale, seed, now)
    coll = _collections()
    counts = dict.fromkeys(PLATFORM_COLLECTIONS, 0)

    async def insert(name: str, docs: list[Doc] | list[RawBSONDocument]) -> None:
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
    # it fails (and the app's start-up creates any that are missing). One insert at a time on
    # purpose: the local MongoDB-compatible server gets slower with concurrent bulk inserts;
    # the documents of the next batch are made meanwhile (`_ahead`).
    deferred: dict[str, list[IndexModel]] = {}
    for name in LARGE_COLLECTIONS:
        if await coll[name].estimated_document_count() == 0:
            deferred[name] = await drop_secondary_indexes(coll[name])
    load_started = time.perf_counter()
    index_started = load_started
    try:
        batches = _ahead(_encoded(data.stream(batch_size), legacy_events))
        async with aclosing(batches):
            async for enrollments, events in batches:
                await insert("enrollments", enrollments)
                await insert("learning_events", events)
                if progress:
                    progress(len(enrollments), len(events))
    finally:
        index_started = time.perf_counter()
        for name, models in deferred.items():
            if models:
                await coll[name].create_indexes(models)
    finished = time.perf_counter()
    return SeedReport(
        counts=counts,
        seconds=finished - started,
        peak_rss_mb=_peak_rss_mb(),
        load_seconds=index_started - load_started,
        index_seconds=finished - index_started,
    )
