"""Running a `FactRead`: one indexed `find()` of the fact collection, its dimension data fetched
by `_id $in` as new ids appear and joined here, in the worker.

The database then does one index walk per report, whatever the joins; the per-row work (joins,
row building, the name order) runs in the worker, which scales out with the workers. The next
batch of facts is read while the current one is joined, and a dimension document is fetched once
per job (while it stays in the job's bounded cache). A read over a date range goes in slices of
that range (`SLICE_DOCS`), and a report that needs a good share of a dimension collection reads
that collection once instead of id by id (`SCAN_SHARE`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing, suppress
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ExecutionTimeout

from app.reports.reading.ordering import sorted_rows
from app.reports.reading.progress import READ_PROGRESS
from app.reports.reading.query import COUNT_BUDGET_MS, FactRead, Join, Row

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
# A range this small is read to count the rows a worker-side filter keeps.
KEEP_COUNT_ROWS = 5000
# A sliced read is counted (for progress) only up to this many documents: past it the total is
# the rows as they arrive (see `count_facts`).
COUNT_MAX_DOCS = 20_000
# A fact read over a date range is read in consecutive slices of that range holding about
# this many documents (the next slice's span follows the density seen so far): a server that
# builds a query's whole result before its first batch (SecantusDB, ~77 µs a document) then
# answers several times a second, never silent long enough for the driver's monitor to give
# up on it, and holds one slice in memory, not the whole report. A slice comes in one reply
# and the next two are asked for while the worker joins it (`_sliced`): three slices in the
# worker's memory at most (~2 MB each). On MongoDB a slice is one reply of one index range; the rows
# are the same and the order is made in the worker.
SLICE_DOCS = 1500
SLICES_AHEAD = 2  # slices asked for before the one being joined is done
FIRST_SLICE = 1 / 512  # of the range, while nothing is known of its density
GROWTH = 8  # the most a slice's span grows or shrinks from one slice to the next
_MS = timedelta(milliseconds=1)  # BSON datetimes are whole milliseconds


class DimensionCache:
    """One join's documents by `_id`, bounded (least recently used out first)."""

    def __init__(self, collection: AsyncCollection[Any], join: Join, size: int = CACHE_SIZE):
        self.collection = collection
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
        if await self._worth_reading_all(len(missing)):
            await self._read_all()
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

    def _values(self, doc: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(doc.get(f) for f in self.fields)

    async def _worth_reading_all(self, more: int) -> bool:
        """Whether asking for `more` ids brings the ids asked for to `SCAN_SHARE` of a
        collection small enough to be cached whole (its size from the collection's metadata,
        once per job)."""
        if self.scanned:
            return False
        if self._collection_size is None:
            self._collection_size = await self.collection.estimated_document_count()
        size = self._collection_size
        return size <= self.size and self.asked + more >= size * SCAN_SHARE

    async def _read_all(self) -> None:
        """Reads the collection whole (its projected fields), in the cache's place."""
        self.scanned = True
        self.queries += 1
        self._make_room(self._collection_size or 0)
        docs, values = self.docs, self._values
        cursor = self.collection.find({}, self.projection).batch_size(5000)
        try:
            while batch := await cursor.to_list(5000):
                for doc in batch:
                    i = doc["_id"]
                    docs.pop(i, None)
                    docs[i] = values(doc)
                self.fetched += len(batch)
        finally:
            await cursor.close()
        self._make_room(0)  # the collection grew past its estimate

    def _make_room(self, coming: int) -> None:
        docs = self.docs
        over = len(docs) + coming - self.size
        if over > 0:
            for i in list(islice(docs, over)):  # the least recently used
                del docs[i]


class _Slices:
    """The queries of one fact read: the read itself, or, when it bounds `field` by a datetime
    range, consecutive slices of that range (`SLICE_DOCS`); together they hold exactly the
    read's documents (each slice `[start, stop)` begins where the last one ended). Slices may
    be asked for before the earlier ones are read: `observe` takes the documents of the
    oldest one not observed yet, and the next span follows that slice's density."""

    def __init__(self, read: dict[str, Any], field: str | None):
        self.read = read
        self.field = field
        self.count = 0  # queries handed out
        bounds = read.get(field) if field else None
        if not (
            isinstance(bounds, dict)
            and set(bounds) == {"$gte", "$lt"}
            and all(isinstance(v, datetime) for v in bounds.values())
        ):
            self.field = None
            return
        self.start: datetime = bounds["$gte"]
        self.end: datetime = bounds["$lt"]
        self.first = self.read_to = self.start  # the range, and how far it has been read
        self.span = max((self.end - self.start) * FIRST_SLICE, _MS)
        self.spans: deque[timedelta] = deque()  # of the slices handed out, not yet observed
        # The last slice observed held few documents or none, so the next span grows past what
        # is known of the density: the reader counts that slice before asking for it (`recut`).
        self.blind = False

    def next(self) -> dict[str, Any] | None:
        """The next query; None when done."""
        if self.field is None:
            self.count += 1
            return self.read if self.count == 1 else None
        if self.start >= self.end:
            return None
        stop = self.start + self.span
        if stop + self.span / 4 >= self.end:  # no sliver of a last slice
            stop = self.end
        else:  # on a whole millisecond: the bound the server compares is the one used next
            stop = max(stop - timedelta(microseconds=stop.microsecond % 1000), self.start + _MS)
        return self._hand_out(self.start, stop)

    def _hand_out(self, start: datetime, stop: datetime) -> dict[str, Any]:
        assert self.field is not None
        self.spans.append(stop - start)
        self.start = stop
        self.count += 1
        return {**self.read, self.field: {"$gte": start, "$lt": stop}}

    def recut(self, docs: int) -> dict[str, Any] | None:
        """The slice just handed out holds `docs` documents (counted). Past twice `SLICE_DOCS`,
        it is cut back to the span that holds about `SLICE_DOCS` at that density, and its new
        query returned: data that begins after a long empty stretch of the range then costs a
        count there, not one slice of all of it (which a server that builds a whole result
        before answering builds in one silent go)."""
        if self.field is None or not self.spans or docs <= 2 * SLICE_DOCS:
            return None
        span = self.spans.pop()
        start = self.start - span
        self.count -= 1
        stop = start + max(span * (SLICE_DOCS / docs), _MS)
        stop = max(stop - timedelta(microseconds=stop.microsecond % 1000), start + _MS)
        if stop >= self.start:  # nothing narrower on whole milliseconds
            return self._hand_out(start, self.start)
        self.span = stop - start
        return self._hand_out(start, stop)

    def observe(self, docs: int) -> None:
        """The oldest slice not observed yet held `docs` documents."""
        if self.field is None or not self.spans:
            return
        span = self.spans.popleft()
        self.read_to += span
        self.blind = docs * 2 < SLICE_DOCS  # the span grows more than twofold
        grow = SLICE_DOCS / docs if docs else GROWTH
        self.span = max(span * min(GROWTH, max(1 / GROWTH, grow)), _MS)

    def share(self) -> float:
        """The share of the range read so far (0 for a read that is not sliced)."""
        if self.field is None:
            return 0.0
        return float((self.read_to - self.first) / (self.end - self.first))


def _slice_field(facts: FactRead) -> str | None:
    """The field `facts` is read in slices of, if any. Slices follow one another in its
    ascending order: only for a read sorted by nothing, or first by that field ascending (each
    slice is sorted by the server; later keys only order ties within a slice)."""
    sort = list((facts.sort or {}).items())
    return facts.slice_field if not sort or sort[0] == (facts.slice_field, 1) else None


async def _fact_batches(
    collection: AsyncCollection[Any], facts: FactRead, batch_size: int
) -> AsyncGenerator[list[dict[str, Any]]]:
    """The fact documents the report keeps, in batches of at most `batch_size`; the next batch
    (or slice) is read while the caller works on one."""
    keep = facts.keep
    field = _slice_field(facts)
    progress = READ_PROGRESS.get()
    reads, follow = len(facts.reads), facts.order is not None
    for done, read in enumerate(facts.reads):
        slices = _Slices(read, field)
        docs_of = _sliced if slices.field is not None else _streamed
        async with aclosing(docs_of(collection, facts, slices, batch_size)) as batches:
            async for docs in batches:
                if progress is not None:
                    progress.reading((done + slices.share()) / reads, rows_follow=follow)
                if keep is not None:
                    docs = [doc for doc in docs if keep(doc)]
                if docs:
                    yield docs
        if progress is not None:
            progress.reading((done + 1) / reads, rows_follow=follow)


def _find(
    collection: AsyncCollection[Any], facts: FactRead, query: dict[str, Any], batch: int
) -> Any:
    sort = list((facts.sort or {}).items()) or None
    return collection.find(query, facts.projection, sort=sort).batch_size(batch)


async def _streamed(
    collection: AsyncCollection[Any], facts: FactRead, slices: _Slices, batch_size: int
) -> AsyncGenerator[list[dict[str, Any]]]:
    """A read that is not sliced: one cursor, its next batch asked for while the caller works
    on one."""
    query = slices.next()
    if query is None:
        return
    cursor = _find(collection, facts, query, batch_size)
    pending: asyncio.Future[list[dict[str, Any]]] | None = None
    try:
        pending = asyncio.ensure_future(cursor.to_list(batch_size))
        while pending is not None:
            docs = await pending
            pending = None
            # An empty batch from a cursor still open is not the end.
            if cursor.alive:
                pending = asyncio.ensure_future(cursor.to_list(batch_size))
            if docs:
                yield docs
    finally:
        await _cancel(pending)
        await cursor.close()


async def _sliced(
    collection: AsyncCollection[Any], facts: FactRead, slices: _Slices, batch_size: int
) -> AsyncGenerator[list[dict[str, Any]]]:
    """A read in slices, each slice's documents in one reply (up to twice `SLICE_DOCS`), with
    `SLICES_AHEAD` slices asked for ahead of the one the caller works on: the server builds
    the next while this one is decoded and joined, so it never waits for the worker (a
    server that answers a query only once it has built all of it would otherwise idle for
    every slice's decoding and joining). A slice larger than one reply goes on in batches of
    `batch_size`."""
    reply = 2 * SLICE_DOCS
    asked: deque[tuple[Any, asyncio.Future[list[dict[str, Any]]]]] = deque()

    async def ask() -> None:
        query = slices.next()
        if query is None:
            return
        if slices.blind:  # a span grown past a sparse or empty slice: counted before it is read
            query = slices.recut(await collection.count_documents(query)) or query
        cursor = _find(collection, facts, query, reply)
        asked.append((cursor, asyncio.ensure_future(cursor.to_list(reply))))

    try:
        for _ in range(SLICES_AHEAD):
            await ask()
        while asked:
            cursor, pending = asked[0]
            docs = await pending
            seen = len(docs)
            if cursor.alive:  # more than one reply: the rest of the slice first
                if docs:
                    for start in range(0, len(docs), batch_size):
                        yield docs[start : start + batch_size]
                while cursor.alive:
                    docs = await cursor.to_list(batch_size)
                    seen += len(docs)
                    if docs:
                        yield docs
                docs = []
            asked.popleft()
            await cursor.close()
            slices.observe(seen)
            await ask()  # before this slice is worked on
            for start in range(0, len(docs), batch_size):
                yield docs[start : start + batch_size]
    finally:
        for cursor, pending in asked:
            await _cancel(pending)
            await cursor.close()


async def _cancel(pending: asyncio.Future[Any] | None) -> None:
    if pending is not None:
        pending.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await pending


async def count_facts(collection: AsyncCollection[Any], facts: FactRead) -> int | None:
    """The rows of `facts` while that is cheap, else None: the index ranges are counted within
    `COUNT_BUDGET_MS`, a sliced read slice by slice up to `COUNT_MAX_DOCS`; with a worker-side
    filter, a range of at most `KEEP_COUNT_ROWS` is read and filtered — joined first when the
    filter needs the joins (`after_join`) — and a larger one is counted by the rows as they
    arrive."""
    total = 0
    field = _slice_field(facts)
    for read in facts.reads:
        counted = await _count_read(collection, _Slices(read, field), COUNT_MAX_DOCS - total)
        if counted is None:
            return None
        total += counted
    if facts.keep is None and facts.after_join is None:
        return total
    if total > KEEP_COUNT_ROWS:
        return None
    collection = _decoding(collection, facts)
    if facts.after_join is None:
        batches = _fact_batches(collection, facts, KEEP_COUNT_ROWS)
    else:
        caches = dimension_caches(collection.database, facts)
        batches = _joined(collection, facts, KEEP_COUNT_ROWS, caches)
    kept = 0
    async with aclosing(batches) as b:
        async for docs in b:
            kept += len(docs)
    return kept


async def _count_read(collection: AsyncCollection[Any], slices: _Slices, most: int) -> int | None:
    """The documents of one read, or None past `most` or past the time budget. A sliced read is
    counted slice by slice: a server that builds the whole range before it looks at the clock
    (SecantusDB) then does at most about `most` documents' work for it, not the report's."""
    total = 0
    while (query := slices.next()) is not None:
        try:
            counted = await collection.count_documents(query, maxTimeMS=COUNT_BUDGET_MS)
        except ExecutionTimeout:
            return None
        slices.observe(counted)
        total += counted
        if total > most:
            return None
    return total


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
    """Fact batches whose dimension documents are all in `caches`, `facts.after_join`
    applied (a batch it empties is left out)."""
    after_join = facts.after_join
    dims = [c.docs for c in caches]
    async with aclosing(_fact_batches(collection, facts, batch_size)) as batches:
        async for docs in batches:
            for cache in caches:
                field = cache.field
                await cache.load(doc.get(field) for doc in docs)
            if after_join is not None:
                docs = [doc for doc in docs if after_join(doc, dims)]
                if not docs:
                    continue
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
        for cache in caches:  # read and joined: the merge that follows has their memory
            cache.docs.clear()

    pairs = keyed()
    progress = READ_PROGRESS.get()
    on_sorted = progress.counted if progress is not None else None
    ordered = sorted_rows(pairs, batch_size, on_sorted=on_sorted)
    async with aclosing(joined), aclosing(pairs), aclosing(ordered) as rows:
        async for batch in rows:
            yield batch
