"""Running a `FactRead`: one indexed `find()` of the fact collection, its dimension data fetched
by `_id $in` as new ids appear and joined here, in the worker.

The database then does one index walk per report, whatever the joins; the per-row work (joins,
row building, the name order) runs in the worker, which scales out with the workers. The next
batch of facts is read while the current one is joined, and a dimension document is fetched once
per job (while it stays in the job's bounded cache, `dimensions.py`). A read over a date range
goes in slices of that range (`slicing.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator
from contextlib import aclosing, suppress
from typing import Any

import pymongo
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ExecutionTimeout, PyMongoError

from app.reports.reading import slicing
from app.reports.reading.dimensions import DimensionCache, dimension_caches, share
from app.reports.reading.ordering import sorted_rows
from app.reports.reading.progress import READ_PROGRESS
from app.reports.reading.query import COUNT_BUDGET_MS, FactRead, Row

# A range this small is read to count the rows a worker-side filter keeps.
KEEP_COUNT_ROWS = 5000
# A sliced read is counted (for progress) only up to this many documents: past it the total is
# the rows as they arrive (see `count_facts`).
COUNT_MAX_DOCS = 20_000
SLICES_AHEAD = 2  # slices asked for before the one being joined is done


async def fact_batches(
    collection: AsyncCollection[Any], facts: FactRead, batch_size: int
) -> AsyncGenerator[list[dict[str, Any]]]:
    """The fact documents the report keeps, in batches of at most `batch_size`; the next batch
    (or slice) is read while the caller works on one."""
    keep = facts.keep
    field = slicing.slice_field(facts)
    progress = READ_PROGRESS.get()
    reads, follow = len(facts.reads), facts.order is not None
    for done, read in enumerate(facts.reads):
        slices = slicing.Slices(read, field, collection.full_name)
        docs_of = _sliced if slices.field is not None else _streamed
        async with aclosing(docs_of(collection, facts, slices, batch_size)) as batches:
            async for docs in batches:
                if progress is not None:
                    progress.reading((done + slices.share()) / reads, rows_follow=follow)
                if keep is not None:
                    docs = [doc for doc in docs if keep(doc)]
                if docs:
                    if progress is not None:
                        progress.fetched(len(docs))
                    yield docs
        if progress is not None:
            progress.reading((done + 1) / reads, rows_follow=follow)


def _find(
    collection: AsyncCollection[Any], facts: FactRead, query: dict[str, Any], batch: int
) -> Any:
    sort = list((facts.sort or {}).items()) or None
    return collection.find(query, facts.projection, sort=sort).batch_size(batch)


async def _streamed(
    collection: AsyncCollection[Any], facts: FactRead, slices: slicing.Slices, batch_size: int
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
    collection: AsyncCollection[Any], facts: FactRead, slices: slicing.Slices, batch_size: int
) -> AsyncGenerator[list[dict[str, Any]]]:
    """A read in slices, each slice's documents in one reply (up to twice `SLICE_DOCS`), with
    `SLICES_AHEAD` slices asked for ahead of the one the caller works on: the server builds
    the next while this one is decoded and joined, so it never waits for the worker (a
    server that answers a query only once it has built all of it would otherwise idle for
    every slice's decoding and joining). A slice larger than one reply goes on in batches of
    `batch_size`."""
    reply = 2 * slicing.SLICE_DOCS
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
    field = slicing.slice_field(facts)
    for read in facts.reads:
        counted = await _count_read(collection, slicing.Slices(read, field), COUNT_MAX_DOCS - total)
        if counted is None:
            return None
        total += counted
    if facts.keep is None and facts.after_join is None:
        return total
    if total > KEEP_COUNT_ROWS:
        return None
    collection = decoding(collection, facts)
    if facts.after_join is None:
        batches = fact_batches(collection, facts, KEEP_COUNT_ROWS)
    else:
        caches = dimension_caches(collection.database, facts)
        batches = _joined(collection, facts, KEEP_COUNT_ROWS, caches)
    kept = 0
    async with aclosing(batches) as b:
        async for docs in b:
            kept += len(docs)
    return kept


async def _count_read(
    collection: AsyncCollection[Any], slices: slicing.Slices, most: int
) -> int | None:
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


async def estimate_facts(
    collection: AsyncCollection[Any], facts: FactRead, seconds: float
) -> tuple[int, bool] | None:
    """About how many documents the index ranges of `facts` hold, counted slice by slice (each
    count one slice's work on the server, as the read itself goes) for at most `seconds`:
    (the count, True) when all of it was counted, else (the count over the share of the
    ranges counted, False); None when no document was counted in time. The worker-side
    filter is not applied: the rows may be fewer."""
    deadline = time.monotonic() + seconds
    field = slicing.slice_field(facts)
    total, reads = 0, len(facts.reads)
    for done, read in enumerate(facts.reads):
        slices = slicing.Slices(read, field)
        while (query := slices.next()) is not None:
            left = deadline - time.monotonic()
            share = (done + slices.share()) / reads
            try:
                if left <= 0:
                    raise TimeoutError
                with pymongo.timeout(left):
                    counted = await collection.count_documents(query)
            except (TimeoutError, PyMongoError) as exc:
                if isinstance(exc, PyMongoError) and not exc.timeout:
                    raise
                if share <= 0 or not total:  # nothing seen yet says nothing of the rest
                    return None
                return max(total, round(total / share)), False
            slices.observe(counted)
            total += counted
    return total, True


def decoding(collection: AsyncCollection[Any], facts: FactRead) -> AsyncCollection[Any]:
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
    # The shared store is brought up to date while the first facts are read.
    sharing: asyncio.Task[None] | None = asyncio.create_task(share(caches))
    try:
        async with aclosing(fact_batches(collection, facts, batch_size)) as batches:
            async for docs in batches:
                if sharing is not None:
                    await sharing
                    sharing = None
                for cache in caches:
                    field = cache.field
                    await cache.load(doc.get(field) for doc in docs)
                if after_join is not None:
                    docs = [doc for doc in docs if after_join(doc, dims)]
                    if not docs:
                        continue
                yield docs
    finally:
        await _cancel(sharing)


async def stream_facts(
    collection: AsyncCollection[Any], facts: FactRead, batch_size: int
) -> AsyncGenerator[list[Row]]:
    """The rows of `facts` in batches of at most `batch_size`: in `facts.order` when set (an
    external merge sort), else as read."""
    collection = decoding(collection, facts)
    caches = dimension_caches(collection.database, facts)
    dims = [c.docs for c in caches]
    to_row = facts.to_row
    joined = _joined(collection, facts, batch_size, caches)
    if facts.group is not None:
        grouper = facts.group()
        async with aclosing(joined):
            async for docs in joined:
                grouper.add(docs, dims)
        grouped_rows = grouper.rows()
        for start in range(0, len(grouped_rows), batch_size):
            yield grouped_rows[start : start + batch_size]
        return
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
