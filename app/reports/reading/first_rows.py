"""The first rows of a learner × course report in its order, without reading the rest.

A report whose rows are ordered by department, learner and course names (`LearnerCourse.order`:
learner-progress, compliance-status) is read whole and sorted in the worker: its first page
costs its whole read. Here the first `need` rows are found the other way round, driven by the
order's dimensions (a preview of a large report, `previews/service.py`):

1. the departments in name order, in groups of equal names (enrollments without a department
   first, as null sorts first); a group holding none of the report's rows is skipped after one
   indexed `find_one`, a small one (under `SMALL_GROUP` rows, counted with a limit) is read
   whole through the report's own index ranges;
2. in a large group, the learners in name order (`LearnerOrder`, every user's name key held per
   process and checked against the collection on each use), a growing batch at a time, never
   splitting equal names; their enrollments are read through the `(user_id, course_id)` index
   with the report's filter and the group, joined, filtered and sorted by the report's own key;
3. it stops as soon as `need` rows are known in order.

The rows are those of the whole read, in the same order (the same filter, joins, `to_row` and
key). One assumption the whole read does not make: every enrollment's learner and department
exist (an enrollment of a deleted user or department sorts first in the whole read, and is not
found by this one).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from app.reports.reading.dimensions import dimension_caches
from app.reports.reading.ordering import NameKey, name_key
from app.reports.reading.query import DEPARTMENTS, USERS, FactRead, Row

SMALL_GROUP = 2000  # a department group with fewer rows is read whole
FIRST_BATCH, MAX_BATCH = 64, 4096  # learners per read, doubling
USER_INDEX = [("user_id", 1), ("course_id", 1)]
ORDER_CHECK_SECONDS = 5.0  # how long a checked learner order is trusted without a check
ORDER_MAX_AGE_SECONDS = 300.0  # a learner order is read anew at least this often (renames)


class LearnerOrder:
    """Every user's (name key, `_id`) in name order, per process; read anew when the users
    collection's size or newest `_id` differs from what it was read from (checked at most
    every `ORDER_CHECK_SECONDS`: a learner added or removed), and at least every
    `ORDER_MAX_AGE_SECONDS` (a renamed learner: until then their rows may be placed by their
    old name)."""

    def __init__(self) -> None:
        self.order: list[tuple[NameKey, Any]] = []
        self.stamp: tuple[Any, ...] | None = None
        self.checked = self.read_at = 0.0

    def forget(self) -> None:
        """Read the order anew on its next use."""
        self.stamp = None

    @staticmethod
    async def _stamp(users: AsyncCollection[Any]) -> tuple[Any, ...]:
        newest = await users.find_one({}, {"_id": 1}, sort=[("_id", -1)])
        return (await users.estimated_document_count(), (newest or {}).get("_id"))

    async def of(self, database: AsyncDatabase[Any]) -> list[tuple[NameKey, Any]]:
        users = database[USERS]
        now = time.monotonic()
        if self.stamp is not None and now - self.checked < ORDER_CHECK_SECONDS:
            return self.order
        stamp = await self._stamp(users)
        if stamp != self.stamp or now - self.read_at > ORDER_MAX_AGE_SECONDS:
            order = [(name_key(d.get("name")), d["_id"]) async for d in users.find({}, {"name": 1})]
            order.sort(key=lambda pair: (pair[0], pair[1]))
            self.order, self.stamp, self.read_at = order, stamp, now
        self.checked = now
        return self.order


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
    database: AsyncDatabase[Any], reads: Sequence[dict[str, Any]]
) -> list[list[Any]]:
    """The departments the rows can be in, grouped by equal name keys, in name order."""
    named = [r["department_id"] for r in reads if "department_id" in r]
    query: dict[str, Any] = {"_id": {"$in": named}} if len(named) == len(reads) else {}
    found = [(name_key(d.get("name")), d["_id"]) async for d in database[DEPARTMENTS].find(
        query, {"name": 1}
    )]  # fmt: skip
    found.sort(key=lambda pair: (pair[0], pair[1]))
    groups = [[i for _, i in same] for _, same in groupby(found, key=lambda pair: pair[0])]
    return groups if query else [[None], *groups]


async def first_rows(
    collection: AsyncCollection[Any],
    facts: FactRead,
    need: int,
    *,
    learners: LearnerOrder | None = None,
    small_group: int = SMALL_GROUP,
    first_batch: int = FIRST_BATCH,
) -> list[Row]:
    """The first `need` rows of `facts` in its order (`facts.order` must be the learner ×
    course order; see the module docstring)."""
    assert facts.order is not None
    database = collection.database
    reads = list(facts.reads)
    base: dict[str, Any] = reads[0] if len(reads) == 1 else {"$or": reads}
    caches = dimension_caches(database, facts)
    dims = [c.docs for c in caches]
    keep, after_join, order, to_row = facts.keep, facts.after_join, facts.order, facts.to_row

    async def rows_of(query: dict[str, Any], **options: Any) -> list[tuple[Any, Row]]:
        docs = await collection.find(query, facts.projection, **options).to_list(None)
        if keep is not None:
            docs = [d for d in docs if keep(d)]
        for cache in caches:
            await cache.load(d.get(cache.field) for d in docs)
        if after_join is not None:
            docs = [d for d in docs if after_join(d, dims)]
        return sorted(((order(d, dims), to_row(d, dims)) for d in docs), key=_by_key)

    found: list[Row] = []
    for group in await _department_groups(database, reads):
        in_group = {"$and": [base, {"department_id": {"$in": group}}]}
        if await collection.find_one(in_group, {"_id": 1}) is None:
            continue
        if await collection.count_documents(in_group, limit=small_group) < small_group:
            found += [row for _, row in await rows_of(in_group)]
        else:
            names = await (learners or LEARNERS).of(database)
            for ids in _batches(names, first_batch):
                query = {"$and": [*in_group["$and"], {"user_id": {"$in": ids}}]}
                found += [row for _, row in await rows_of(query, hint=USER_INDEX)]
                if len(found) >= need:
                    break
        if len(found) >= need:
            break
    return found[:need]


def _by_key(pair: tuple[Any, Row]) -> Any:
    return pair[0]


__all__ = ["LEARNERS", "LearnerOrder", "first_rows"]
