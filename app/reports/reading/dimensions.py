"""The dimension documents of a fact read (users, courses, departments), fetched by `_id $in`
as new ids appear and kept per job and per join in a bounded cache; a report that needs a good
share of a dimension collection reads that collection once instead of id by id (`SCAN_SHARE`).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from app.reports.reading.preference import report_database
from app.reports.reading.query import FactRead, Join
from app.reports.reading.shared import Key, SharedDimensions, shared_store

# Ids per `$in` of a dimension fetch: SecantusDB answers a `$in` of 100–200 ids at ~0.6 ms an
# id, of 1,000 ids at ~3.3 ms an id (measured on the bench database).
IN_BATCH = 100
# Dimension documents a job keeps per join (least recently used go first). At least two fact
# batches' worth, so a batch's documents are never evicted while it is joined; a dimension
# collection at most this large may be read whole (`SCAN_SHARE`).
CACHE_SIZE = 100_000
# Once the ids a job has asked for by `_id $in` reach this share of the dimension collection,
# the rest of the collection is read in one pass instead: an id found through the `_id` index
# costs several documents read in order (SecantusDB: ~0.5 ms vs ~77 µs; MongoDB: a random
# index seek and fetch vs a sequential read), so a report that needs most of the users costs
# at most about twice the cheaper of the two ways, whichever way it turns out.
SCAN_SHARE = 1 / 8


class DimensionCache:
    """One join's documents by `_id`, bounded (least recently used out first); what it does
    not hold is looked up in the process's `shared` store (`shared.py`) before the server."""

    def __init__(self, collection: AsyncCollection[Any], join: Join, size: int = CACHE_SIZE):
        self.collection = collection
        self.shared: SharedDimensions | None = None  # set once the store is up to date
        naive = not collection.codec_options.tz_aware
        self.key: Key = (collection.name, join.fields, naive)
        self.fields = join.fields
        self.projection = dict.fromkeys(join.fields, 1)
        self.field = join.field
        self.size = size
        # id -> the join's field values; in use order (a hit moves to the end), oldest first.
        self.docs: dict[Any, tuple[Any, ...]] = {}
        self.empty: tuple[Any, ...] = (None,) * len(join.fields)
        self.fetched = 0  # documents read (for tests and the benchmark)
        self.queries = 0
        self.asked = 0  # ids asked for by `_id $in`
        self.scanned = False  # the whole collection was read once
        self._collection_size: int | None = None

    async def load(self, ids: Iterable[Any]) -> None:
        """Makes sure every one of `ids` is cached (an id without a document is cached as an
        empty one: a missing user still gives a row, with empty name cells)."""
        docs = self.docs
        wanted = set(ids)
        wanted.discard(None)
        missing = []
        for i in wanted:
            value = docs.pop(i, None)
            if value is None:
                missing.append(i)
            else:
                docs[i] = value  # most recently used
        if not missing:
            return
        shared = self.shared
        if shared is not None and (kept := shared.take(self.key, missing)):
            self._make_room(len(kept))
            docs.update(kept)
            missing = [i for i in missing if i not in kept]
            if not missing:
                return
        version = shared.version(self.collection.name) if shared is not None else None
        if await self._worth_reading_all(len(missing)):
            await self._read_all(version)
            missing = [i for i in missing if i not in docs]
            if not missing:
                return
        missing.sort()  # a sorted $in walks the _id index in one direction
        found: dict[Any, tuple[Any, ...]] = {}
        values = self._values
        for start in range(0, len(missing), IN_BATCH):
            chunk = missing[start : start + IN_BATCH]
            self.queries += 1
            cursor = self.collection.find({"_id": {"$in": chunk}}, self.projection)
            for doc in await cursor.to_list(None):
                found[doc["_id"]] = values(doc)
        self.asked += len(missing)
        self.fetched += len(found)
        self._make_room(len(missing))
        empty = self.empty
        for i in missing:
            docs[i] = found.get(i, empty)
        if shared is not None and version is not None:
            shared.keep(self.key, {i: docs[i] for i in missing}, version)

    def _values(self, doc: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(doc.get(f) for f in self.fields)

    async def _worth_reading_all(self, more: int) -> bool:
        """Whether asking for `more` ids brings the ids asked for to `SCAN_SHARE` of a
        collection small enough to be cached whole (its size from the collection's metadata,
        once per job)."""
        if self.scanned:
            return False
        shared, name = self.shared, self.collection.name
        if self._collection_size is None and shared is not None:
            self._collection_size = shared.size(name)
        if self._collection_size is None:
            self._collection_size = await self.collection.estimated_document_count()
            if shared is not None:
                shared.note_size(name, self._collection_size)
        size = self._collection_size
        return size <= self.size and self.asked + more >= size * SCAN_SHARE

    async def _read_all(self, version: tuple[int, int] | None) -> None:
        """Reads the collection whole (its projected fields), in the cache's place (and offers
        it to the shared store, which keeps the most recent of them)."""
        self.scanned = True
        self.queries += 1
        self._make_room(self._collection_size or 0)
        docs, values = self.docs, self._values
        cursor = self.collection.find({}, self.projection).batch_size(5000)
        try:
            while batch := await cursor.to_list(5000):
                read = {doc["_id"]: values(doc) for doc in batch}
                for i, value in read.items():
                    docs.pop(i, None)
                    docs[i] = value
                self.fetched += len(batch)
                if self.shared is not None and version is not None:
                    self.shared.keep(self.key, read, version)
        finally:
            await cursor.close()
        self._make_room(0)  # the collection grew past its estimate

    def _make_room(self, coming: int) -> None:
        docs = self.docs
        over = len(docs) + coming - self.size
        if over > 0:
            for i in list(islice(docs, over)):  # the least recently used
                del docs[i]


def dimension_caches(database: AsyncDatabase[Any], facts: FactRead) -> list[DimensionCache]:
    reads = report_database(database)  # the joins read where the facts are read
    return [DimensionCache(reads[j.collection], j) for j in facts.joins]


async def share(caches: list[DimensionCache]) -> None:
    """Lets `caches` look documents up in the process's shared store, once it is up to date
    (`SharedDimensions.current`); without a store, or when it cannot be made current, they
    read from the server only."""
    if not caches:
        return
    store = shared_store(caches[0].collection.database)
    if store is not None and await store.current(c.collection.name for c in caches):
        for cache in caches:
            cache.shared = store
