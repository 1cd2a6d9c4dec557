"""The first rows of a learner × course report in its order, without reading the rest.

A report whose rows are ordered by department, learner and course names (`LearnerCourse.order`:
learner-progress, compliance-status) is read whole and sorted in the worker: its first page
costs its whole read. Here the first `need` rows are found the other way round, driven by the
order's dimensions (a preview of a large report, `previews/service.py`):

1. the departments in name order, in groups of equal names (enrollments without a department
   first, when there are any at all); each group's part of the report's reads as flat queries
   (the reads' own fields plus the group: no `$and`, so any server plans them on the reads'
   indexes); a group expected small (the caller's count of the reads over the groups, at most
   `SMALL_GROUP` documents) is read whole, up to that bound;
2. in a larger group, the learners in name order (`LearnerOrder`, every user's name key held
   per process, read outside the preview's budget), a growing batch at a time, never splitting
   equal names; their enrollments are read by `user_id $in` with the group's reads, joined,
   filtered and sorted by the report's own key;
3. it stops as soon as `need` rows are known in order.

The rows are those of the whole read, in the same order (the same filter, joins, `to_row` and
key). One assumption the whole read does not make: every enrollment's learner and department
exist (an enrollment of a deleted user or department sorts first in the whole read, and is not
found by this one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import Context
from itertools import groupby
from typing import Any

import structlog
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from app.reports.reading.dimensions import dimension_caches
from app.reports.reading.ordering import NameKey, name_key
from app.reports.reading.query import DEPARTMENTS, USERS, FactRead, Row, split_match

log = structlog.get_logger(__name__)

SMALL_GROUP = 5000  # a department group expected this small is read whole
FIRST_BATCH, MAX_BATCH = 64, 1024  # learners per read, doubling
Query = dict[str, Any]
Doc = dict[str, Any]
ORDER_CHECK_SECONDS = 60.0  # how long a checked learner order is trusted without a check
ORDER_MAX_AGE_SECONDS = 300.0  # a learner order is read anew at least this often (renames)
MAX_LEARNERS = 200_000  # past this many users no order is held (the whole read is used)


class LearnerOrder:
    """Every user's (name key, `_id`) in name order, per process.

    It is read, and checked, in a task of its own, outside any preview's time budget (a read
    cut short by a budget would be started again by the next preview, and a server that
    finishes abandoned queries anyway would pile them up). A preview uses the order there is
    and, at most every `ORDER_CHECK_SECONDS`, starts a check in the background: the users
    collection's size (the collection's metadata, no scan) against what the order was read
    from (a learner added or removed), and its age against `ORDER_MAX_AGE_SECONDS` (a renamed
    learner, or as many added as removed); either reads it anew. So a learner added in the
    last minute may be missing from a large preview's first pages. Before there is an order, a preview waits for the first read at most
    what its budget has left, then goes without (`of` answers None)."""

    def __init__(self) -> None:
        self.order: list[tuple[NameKey, Any]] | None = None
        # A learner's place in the order (learners whose names tie share the first's place).
        self.ranks: dict[Any, int] | None = None
        self.stamp: tuple[Any, ...] | None = None
        self.checked = self.read_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def forget(self) -> None:
        """Read the order anew on its next use."""
        self.order = self.ranks = self.stamp = None

    async def _refresh(self, users: AsyncCollection[Any]) -> None:
        try:
            stamp = (await users.estimated_document_count(),)
            if stamp[0] > MAX_LEARNERS:
                self.order, self.ranks, self.stamp = None, None, stamp
                return
            old = time.monotonic() - self.read_at > ORDER_MAX_AGE_SECONDS
            if self.order is None or stamp != self.stamp or old:
                names = [(d.get("name"), d["_id"]) async for d in users.find({}, {"name": 1})]
                order, ranks = await asyncio.to_thread(_in_name_order, names)
                self.order, self.ranks = order, ranks
                self.stamp, self.read_at = stamp, time.monotonic()
        except Exception as exc:  # the previews go on with what they have (or the whole read)
            log.warning("learner_order_failed", error=str(exc)[:200])
        finally:
            self.checked, self._task = time.monotonic(), None

    async def of(
        self, database: AsyncDatabase[Any], wait: float
    ) -> list[tuple[NameKey, Any]] | None:
        """The order, or None when there is none yet within `wait` seconds (or the users are
        too many)."""
        if self._task is None and time.monotonic() - self.checked >= ORDER_CHECK_SECONDS:
            # A context of its own: no preview's deadline (`pymongo.timeout`) applies to it.
            self._task = asyncio.create_task(self._refresh(database[USERS]), context=Context())
        task = self._task
        if self.order is None and task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), max(wait, 0.0))
        return self.order


def _in_name_order(
    names: list[tuple[Any, Any]],
) -> tuple[list[tuple[NameKey, Any]], dict[Any, int]]:
    order = sorted((name_key(name), user_id) for name, user_id in names)
    ranks: dict[Any, int] = {}
    first = 0
    for at, (key, user_id) in enumerate(order):
        if at and key != order[at - 1][0]:
            first = at
        ranks[user_id] = first
    return order, ranks


LEARNERS = LearnerOrder()


def _batches(order: Sequence[tuple[NameKey, Any]], size: int) -> Iterator[list[Any]]:
    """Learner ids in name order, in batches growing from `size` that never split equal names
    (their rows interleave by course); the first also asks for enrollments without a
    learner."""
    at, first = 0, True
    while at < len(order):
        end = min(at + size, len(order))
        while end < len(order) and order[end][0] == order[end - 1][0]:
            end += 1
        ids = [user_id for _, user_id in order[at:end]]
        yield [None, *ids] if first else ids
        at, size, first = end, min(size * 2, MAX_BATCH), False


async def _department_groups(
    database: AsyncDatabase[Any], collection: AsyncCollection[Any], reads: Sequence[Query]
) -> list[list[Any]]:
    """The departments the rows can be in, grouped by equal name keys, in name order; first
    the enrollments without a department, when there are any at all."""
    named = [r["department_id"] for r in reads if "department_id" in r]
    query: Query = {"_id": {"$in": named}} if len(named) == len(reads) else {}
    found = [(name_key(d.get("name")), d["_id"]) async for d in database[DEPARTMENTS].find(
        query, {"name": 1}
    )]  # fmt: skip
    found.sort(key=lambda pair: (pair[0], pair[1]))
    groups = [[i for _, i in same] for _, same in groupby(found, key=lambda pair: pair[0])]
    if not query and await collection.find_one({"department_id": None}, {"_id": 1}):
        groups.insert(0, [None])
    return groups


def _in_group(reads: Sequence[Query], group: list[Any]) -> list[Query]:
    """The report's reads narrowed to a department group, each one flat query (a read that
    names another department drops out)."""
    out = []
    for read in reads:
        if "department_id" in read:
            if read["department_id"] in group:
                out.append(read)
        else:
            out.append({**read, "department_id": group[0] if len(group) == 1 else {"$in": group}})
    return out


async def first_rows(
    collection: AsyncCollection[Any],
    facts: FactRead,
    need: int,
    *,
    learners: LearnerOrder | None = None,
    small_group: int = SMALL_GROUP,
    first_batch: int = FIRST_BATCH,
    wait: float = 1.0,
    expected: int = 0,
) -> list[Row] | None:
    """The first `need` rows of `facts` in its order (`facts.order` must be the learner ×
    course order; see the module docstring); None when the learner order a large group needs
    is not there within `wait` seconds. `expected`: about how many documents the reads hold
    (a group expected larger than `small_group` is walked by its learners at once)."""
    assert facts.order is not None
    database = collection.database
    reads = list(facts.reads)
    caches = dimension_caches(database, facts)
    dims = [c.docs for c in caches]
    keep, after_join, order, to_row = facts.keep, facts.after_join, facts.order, facts.to_row

    async def docs_of(
        queries: Sequence[Query], most: int | None = None, fields: Sequence[Query] = ()
    ) -> list[Doc]:
        """The documents of `queries`, each once (at most `most` + 1), with the fields the
        reads `fields` test besides the report's own."""
        projection = {**facts.projection, **{k: 1 for q in fields for k in q}}
        docs: dict[Any, Doc] = {}
        for query in queries:
            if most is not None and len(docs) > most:
                break
            cursor = collection.find(query, projection)
            if most is not None:
                cursor = cursor.limit(most + 1 - len(docs))
            docs.update((d["_id"], d) for d in await cursor.to_list(None))
        return list(docs.values())

    async def rows_of(docs: list[Doc]) -> list[Row]:
        if keep is not None:
            docs = [d for d in docs if keep(d)]
        for cache in caches:
            await cache.load(d.get(cache.field) for d in docs)
        if after_join is not None:
            docs = [d for d in docs if after_join(d, dims)]
        return [
            row for _, row in sorted(((order(d, dims), to_row(d, dims)) for d in docs), key=_by_key)
        ]

    found: list[Row] = []
    groups = await _department_groups(database, collection, reads)
    per_group = expected / max(1, len(groups))
    for group in groups:
        queries = _in_group(reads, group)
        tests = [split_match(q, (), naive=facts.naive_datetimes)[1] for q in queries]
        if per_group <= small_group:  # expected small: read whole, up to a bound
            # The server is asked for the equalities (index ranges of one value each, which
            # every server plans well), the ranges (dates) tested here.
            docs = await docs_of([_equalities(q) for q in queries], small_group, queries)
            if len(docs) <= small_group:
                docs = [d for d in docs if _passes(d, tests)]
                ranks = (learners or LEARNERS).ranks
                if ranks is not None and after_join is None:
                    docs = _first_learners(docs, ranks, need - len(found))
                found += await rows_of(docs)
                if len(found) >= need:
                    break
                continue
        names = await (learners or LEARNERS).of(database, wait)
        if names is None:
            return None  # no learner order in time: the caller reads the whole report
        # The server is asked for the learners' enrollments alone (one `user_id` index range
        # each), the group's reads tested here.
        for ids in _batches(names, first_batch):
            docs = await docs_of([{"user_id": {"$in": ids}}], fields=queries)
            found += await rows_of([d for d in docs if _passes(d, tests)])
            if len(found) >= need:
                break
        if len(found) >= need:
            break
    return found[:need]


def _first_learners(docs: list[Doc], ranks: Mapping[Any, int], need: int) -> list[Doc]:
    """Of a group's documents, those of its first learners in name order (by `ranks`) that
    hold its first `need` rows, the learners whose names tie with the last of them included:
    only they are joined and sorted. A learner the order does not know yet (just added, or
    missing) ranks first, as a missing name sorts first."""
    if len(docs) <= need:
        return docs
    ranked = sorted(docs, key=lambda d: ranks.get(d.get("user_id"), -1))
    last = ranks.get(ranked[need - 1].get("user_id"), -1)
    return [d for d in ranked if ranks.get(d.get("user_id"), -1) <= last]


def _equalities(query: Query) -> Query:
    """The equality and `$in` parts of a flat query (all of it when it has none)."""
    kept = {k: v for k, v in query.items() if not isinstance(v, dict) or set(v) == {"$in"}}
    return kept or query


def _passes(doc: Doc, tests: Sequence[Callable[[Doc], bool] | None]) -> bool:
    """Whether `doc` is in one of the reads (their tests; None: a read that takes all)."""
    return any(test is None or test(doc) for test in tests)


def _by_key(pair: tuple[Any, Row]) -> Any:
    return pair[0]


__all__ = ["LEARNERS", "LearnerOrder", "first_rows"]
