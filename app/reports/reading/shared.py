"""Dimension documents kept across the jobs of a worker process (users, courses, departments:
the joins of the fact reads), valid for as long as MongoDB's change stream says they did not
change.

Each job still joins through its own bounded cache (`dimensions.DimensionCache`); what it does
not hold yet it looks up here before it asks the server. Before a job's read uses the store,
the store is brought up to date (`SharedDimensions.current`): it writes a mark of its own (one
small upsert on `report_read_marks` with a fresh token) and reads its change stream (filtered
to the watched collections and to its mark document) until that token comes by. A change
stream returns the changes in the order they were committed, so every change committed before
the mark — a course renamed before the job was even created, by anyone — has been applied by
then: each changed, inserted or deleted document leaves the store, and a dropped or renamed
collection empties it. A document read while a change came by is not kept (`version`: its read
may predate the change). Whatever goes wrong (no mark within `CATCH_UP_SECONDS`, a stream
error, a server without change streams: a standalone MongoDB) empties the store and the job
reads from the server, as it always did.

Only the worker uses it (`share_dimensions`, called by its entry point), and only while report
reads go to the primary: a secondary may be behind the stream, and a document read there could
be older than the change that was applied already.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import structlog
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from app.common.time import utcnow
from app.reports.reading.preference import report_read_preference

log = structlog.get_logger(__name__)

# Entries kept per (collection, fields), least recently used out first: the people and courses
# of a few departments' reports (~400 bytes an entry: ~4 MB of users at most, kept between
# jobs); a report that needs more reads the rest per job, as before.
SHARED_SIZE = 10_000
MARKS = "report_read_marks"  # one document per worker process, its `_id` the process's mark
CATCH_UP_SECONDS = 2.0  # the longest a job waits for its mark to come by
AWAIT_MS = 100  # how long one read of the stream waits for a change
RETRY_SECONDS = 600.0  # after a server refused a change stream, how long until it is asked again
SIZE_SECONDS = 60.0  # how long a collection's estimated size is reused (SCAN_SHARE's choice)
_EVICTING = {"insert", "update", "replace", "delete"}
_TOKEN = "token"  # the field of a mark a catch-up writes and waits for
# What entries are kept under: the collection, the join's fields, and whether datetimes are
# decoded naive (a job's codec options).
Key = tuple[str, tuple[str, ...], bool]


class SharedDimensions:
    """The store of one process and event loop (see the module docstring)."""

    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.database = database
        self.loop = asyncio.get_running_loop()
        self.mark = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.entries: dict[Key, OrderedDict[Any, tuple[Any, ...]]] = {}
        self.epochs: dict[str, int] = {}  # per collection: moves with every change applied
        self.generation = 0  # moves whenever the store is emptied
        self.sizes: dict[str, tuple[float, int]] = {}
        self.stream: AsyncChangeStream[Any] | None = None
        self.watched: frozenset[str] = frozenset()
        self.lock = asyncio.Lock()
        self.refused_at: float | None = None
        self.caught_up = 0  # catch-ups done (for tests and the benchmark)

    async def current(self, collections: Iterable[str]) -> bool:
        """Applies every change committed so far to the watched `collections`; False when
        that could not be made sure of (the store is then empty, and the caller reads from
        the server)."""
        wanted = frozenset(collections)
        async with self.lock:
            if self.refused_at is not None:
                if time.monotonic() - self.refused_at < RETRY_SECONDS:
                    return False
                self.refused_at = None
            try:
                if self.stream is None or not wanted <= self.watched:
                    watch = wanted | self.watched
                    await self._reset()
                    try:
                        await self._open(watch)
                    except PyMongoError:
                        self.refused_at = time.monotonic()  # e.g. no change streams here
                        raise
                await asyncio.wait_for(self._catch_up(), CATCH_UP_SECONDS)
                self.caught_up += 1
                return True
            except (PyMongoError, TimeoutError) as exc:
                log.warning("shared_dimensions_reset", error=str(exc)[:200])
                await self._reset()
                return False
            except BaseException:  # cancelled: a read of the stream may have been cut short
                self._forget()
                raise

    async def _open(self, collections: frozenset[str]) -> None:
        marks = self.database[MARKS]
        # Marks of processes gone for a day (each live one renews its own at every catch-up).
        await marks.delete_many({"at": {"$lt": utcnow() - timedelta(days=1)}})
        pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "$or": [
                        {"ns.coll": {"$in": sorted(collections)}},
                        {"ns.coll": MARKS, "documentKey._id": self.mark},
                    ]
                }
            },
            {
                "$project": {
                    "operationType": 1,
                    "ns": 1,
                    "documentKey": 1,
                    f"updateDescription.updatedFields.{_TOKEN}": 1,
                    f"fullDocument.{_TOKEN}": 1,
                }
            },
        ]
        self.stream = await self.database.watch(pipeline, max_await_time_ms=AWAIT_MS)
        self.watched = collections

    async def _catch_up(self) -> None:
        stream = self.stream
        assert stream is not None
        token = uuid.uuid4().hex  # this catch-up's mark (the document may be deleted meanwhile)
        await self.database[MARKS].update_one(
            {"_id": self.mark}, {"$set": {"at": utcnow(), _TOKEN: token}}, upsert=True
        )
        while True:
            if not stream.alive:
                raise _StreamEnded("the change stream is closed")
            event = await stream.try_next()
            if event is None:
                continue  # nothing yet: the stream waited AWAIT_MS
            collection = (event.get("ns") or {}).get("coll")
            if collection != MARKS:
                self._apply(event, collection)
            elif _token_of(event) == token:
                return

    def _apply(self, event: Mapping[str, Any], collection: str | None) -> None:
        kind = event.get("operationType")
        if kind == "invalidate":
            raise _StreamEnded("the change stream was invalidated")
        if kind not in _EVICTING or collection is None:
            # A drop, a rename (into a watched collection too), anything else: nothing kept
            # is known any more.
            for name in self.watched:
                self.epochs[name] = self.epochs.get(name, 0) + 1
            self.entries.clear()
            self.sizes.clear()
            return
        self.epochs[collection] = self.epochs.get(collection, 0) + 1
        key = (event.get("documentKey") or {}).get("_id")
        for (name, *_), entries in self.entries.items():
            if name == collection:
                entries.pop(key, None)

    def _forget(self) -> AsyncChangeStream[Any] | None:
        """Empties the store and lets go of its stream (returned, to be closed)."""
        stream, self.stream, self.watched = self.stream, None, frozenset()
        self.entries.clear()
        self.sizes.clear()
        self.generation += 1
        return stream

    async def _reset(self) -> None:
        stream = self._forget()
        if stream is not None:
            try:
                await stream.close()
            except PyMongoError:
                pass

    # -- the entries --------------------------------------------------------------------

    def version(self, collection: str) -> tuple[int, int]:
        """Taken before a read of `collection`'s documents: `keep` takes what the read found
        only while this has not moved (no change came by in between)."""
        return self.generation, self.epochs.get(collection, 0)

    def take(self, key: Key, ids: Iterable[Any]) -> dict[Any, tuple[Any, ...]]:
        """The entries of `ids` the store holds under `key` (a missing document as its empty
        tuple)."""
        entries = self.entries.get(key)
        if not entries:
            return {}
        found: dict[Any, tuple[Any, ...]] = {}
        for i in ids:
            value = entries.get(i)
            if value is not None:
                entries.move_to_end(i)
                found[i] = value
        return found

    def keep(
        self, key: Key, values: Mapping[Any, tuple[Any, ...]], version: tuple[int, int]
    ) -> None:
        """Keeps what a read that started at `version` found, unless a change came by since."""
        if self.stream is None or version != self.version(key[0]):
            return
        entries = self.entries.setdefault(key, OrderedDict())
        for i, value in values.items():
            entries[i] = value
            entries.move_to_end(i)
        while len(entries) > SHARED_SIZE:
            entries.popitem(last=False)

    def size(self, collection: str) -> int | None:
        kept = self.sizes.get(collection)
        return kept[1] if kept and time.monotonic() - kept[0] < SIZE_SECONDS else None

    def note_size(self, collection: str, size: int) -> None:
        self.sizes[collection] = (time.monotonic(), size)


class _StreamEnded(PyMongoError):
    pass


def _token_of(event: Mapping[str, Any]) -> Any:
    """The token a mark's change wrote (an update, or the insert of an upsert)."""
    updated = (event.get("updateDescription") or {}).get("updatedFields") or {}
    return updated.get(_TOKEN, (event.get("fullDocument") or {}).get(_TOKEN))


class _Sharing:
    enabled = False
    store: SharedDimensions | None = None


_SHARING = _Sharing()


def share_dimensions(enabled: bool = True) -> None:
    """Lets this process keep dimension documents across jobs (the worker's entry point; a
    store already open stays)."""
    _SHARING.enabled = enabled
    if not enabled:
        _SHARING.store = None


def shared_store(database: AsyncDatabase[Any]) -> SharedDimensions | None:
    """This process's store for `database`, or None (not a worker, or reports read from a
    secondary)."""
    if not _SHARING.enabled or report_read_preference().mongos_mode != "primary":
        return None
    store = _SHARING.store
    if (
        store is None
        or store.loop is not asyncio.get_running_loop()
        or store.database.client is not database.client
        or store.database.name != database.name
    ):
        store = _SHARING.store = SharedDimensions(database)
    return store
