"""Running a `FactRead`: one indexed `find()` of the fact collection, its dimension data fetched
by `_id $in` as new ids appear and joined here, in the worker.

The database then does one index walk per report, whatever the joins; the per-row work (joins,
row building, the name order) runs in the worker, which scales out with the workers. The next
batch of facts is read while the current one is joined, and a dimension document is fetched once
per job (while it stays in the job's bounded cache).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing, suppress
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ExecutionTimeout

from app.reports.types.ordering import sorted_rows
from app.reports.types.query import COUNT_BUDGET_MS, FactRead, Join, Row

# Ids per `$in` of a dimension fetch: SecantusDB answers a `$in` of 100–200 ids at ~0.6 ms an
# id, of 1,000 ids at ~3.3 ms an id (measured on the bench database).
IN_BATCH = 100
# Dimension documents a job keeps per join (least recently used go first). At least two fact
# batches' worth, so a batch's documents are never evicted while it is joined.
CACHE_SIZE = 20_000
# A range this small is read to count the rows a worker-side filter keeps.
KEEP_COUNT_ROWS = 5000


class DimensionCache:
    """One join's documents by `_id`, bounded (least recently used out first)."""

    def __init__(self, collection: AsyncCollection[Any], join: Join, size: int = CACHE_SIZE):
        self.collection = collection
        self.projection = dict.fromkeys(join.fields, 1)
        self.field = join.field
        self.size = size
        self.docs: OrderedDict[Any, dict[str, Any]] = OrderedDict()
        self.fetched = 0  # documents read (for tests and the benchmark)
        self.queries = 0

    async def load(self, ids: Iterable[Any]) -> None:
        """Makes sure every one of `ids` is cached (an id without a document is cached as an
        empty one: a missing user still gives a row, with empty name cells)."""
        docs = self.docs
        wanted = set(ids)
        wanted.discard(None)
        missing = []
        for i in wanted:
            if i in docs:
                docs.move_to_end(i)
            else:
                missing.append(i)
        if not missing:
            return
        missing.sort()  # a sorted $in walks the _id index in one direction
        found: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(missing), IN_BATCH):
            chunk = missing[start : start + IN_BATCH]
            self.queries += 1
            cursor = self.collection.find({"_id": {"$in": chunk}}, self.projection)
            for doc in await cursor.to_list(None):
                found[doc["_id"]] = doc
        self.fetched += len(found)
        overflow = len(docs) + len(missing) - self.size
        for _ in range(max(0, overflow)):
            docs.popitem(last=False)
        for i in missing:
            docs[i] = found.get(i) or {}


async def _fact_batches(
    collection: AsyncCollection[Any], facts: FactRead, batch_size: int
) -> AsyncGenerator[list[dict[str, Any]]]:
    """The fact documents the report keeps, in batches, each read's next batch read while the
    caller works on one."""
    keep = facts.keep
    sort = list((facts.sort or {}).items()) or None
    for read in facts.reads:
        cursor = collection.find(read, facts.projection, sort=sort).batch_size(batch_size)
        pending: asyncio.Future[list[dict[str, Any]]] | None = None
        try:
            pending = asyncio.ensure_future(cursor.to_list(batch_size))
            while pending is not None:
                docs = await pending
                pending = None
                if cursor.alive or docs:
                    # An empty batch from a cursor still open is not the end.
                    pending = asyncio.ensure_future(cursor.to_list(batch_size))
                if keep is not None:
                    docs = [doc for doc in docs if keep(doc)]
                if docs:
                    yield docs
        finally:
            if pending is not None:
                pending.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await pending
            await cursor.close()


async def count_facts(collection: AsyncCollection[Any], facts: FactRead) -> int | None:
    """The rows of `facts` while that is cheap, else None: the index ranges are counted within
    `COUNT_BUDGET_MS`; with a worker-side filter, a range of at most `KEEP_COUNT_ROWS` is read
    and filtered (a larger one is counted by the rows as they arrive)."""
    total = 0
    for read in facts.reads:
        try:
            total += await collection.count_documents(read, maxTimeMS=COUNT_BUDGET_MS)
        except ExecutionTimeout:
            return None
    if facts.keep is None:
        return total
    if total > KEEP_COUNT_ROWS:
        return None
    kept = 0
    async with aclosing(_fact_batches(_decoding(collection, facts), facts, KEEP_COUNT_ROWS)) as b:
        async for docs in b:
            kept += len(docs)
    return kept


def _decoding(collection: AsyncCollection[Any], facts: FactRead) -> AsyncCollection[Any]:
    if not facts.naive_datetimes:
        return collection
    return collection.with_options(
        codec_options=collection.codec_options.with_options(tz_aware=False, tzinfo=None)
    )


async def _joined(
    collection: AsyncCollection[Any],
    facts: FactRead,
    batch_size: int,
    caches: list[DimensionCache],
) -> AsyncGenerator[list[dict[str, Any]]]:
    """Fact batches whose dimension documents are all in `caches`."""
    async with aclosing(_fact_batches(collection, facts, batch_size)) as batches:
        async for docs in batches:
            for cache in caches:
                field = cache.field
                await cache.load(doc.get(field) for doc in docs)
            yield docs


def dimension_caches(database: AsyncDatabase[Any], facts: FactRead) -> list[DimensionCache]:
    return [DimensionCache(database[j.collection], j) for j in facts.joins]


async def stream_facts(
    collection: AsyncCollection[Any], facts: FactRead, batch_size: int
) -> AsyncGenerator[list[Row]]:
    """The rows of `facts` in batches of at most `batch_size`: in `facts.order` when set (an
    external merge sort), else as read."""
    collection = _decoding(collection, facts)
    caches = dimension_caches(collection.database, facts)
    dims = [c.docs for c in caches]
    to_row = facts.to_row
    joined = _joined(collection, facts, batch_size, caches)
    order = facts.order
    if order is None:
        async with aclosing(joined):
            async for docs in joined:
                yield [to_row(doc, dims) for doc in docs]
        return

    async def keyed() -> AsyncGenerator[list[tuple[Any, Row]]]:
        async for docs in joined:
            yield [(order(doc, dims), to_row(doc, dims)) for doc in docs]

    pairs = keyed()
    async with aclosing(joined), aclosing(pairs), aclosing(sorted_rows(pairs, batch_size)) as rows:
        async for batch in rows:
            yield batch
