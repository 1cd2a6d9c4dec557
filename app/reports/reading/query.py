"""The MongoDB side of a report: the filters the reads share, and running one.

A report type describes its read as a `Plan`: either an aggregation the server reduces (pipeline,
row builder, aggregate options), or a `FactRead` — one indexed `find()` of the fact collection
whose dimension data (users, courses, departments) is joined in the worker (`facts.py`). The base
definition runs either, and counts with `count_rows`, so no type repeats that code.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from app.reports.dates import StoredRange
from app.security import DataScope

Row = tuple[Any, ...]
Stage = dict[str, Any]

# Collection names of the platform data (see app/platform/models.py).
USERS, COURSES, DEPARTMENTS = "users", "courses", "departments"
CLOSED_STATUSES = ("completed", "withdrawn")
# Names sort the way people read them (case-insensitive), not by byte value. Only used where the
# first $match works on ObjectId / date index fields, which a collation does not affect.
NAME_COLLATION = {"locale": "en", "strength": 2}
# How long a fact read's row count may run on the server before it counts as not cheap: past
# that it would be a second full scan competing with the read itself (`facts.count_facts`).
COUNT_BUDGET_MS = 250


@dataclass(frozen=True)
class Join:
    """Dimension documents a fact read needs: `collection` documents whose `_id` is the fact's
    `field`, with `fields` only. The row builder gets them as a mapping id -> the values of
    `fields`, in their order (kept as tuples: a job may hold a whole users collection's)."""

    field: str
    collection: str
    fields: tuple[str, ...]


# The dimension documents of one fact batch, one mapping per `Join`, in the plan's order: id ->
# the values of the join's `fields`, in that order (a tuple of None for an id without a
# document; an id absent from the mapping is not in the batch).
Dimensions = Sequence[Mapping[Any, tuple[Any, ...]]]


@dataclass(frozen=True)
class FactRead:
    """One indexed read of the fact collection: `reads` are its filters, each exactly the
    fields of one index (an equality per id of a `$in`, so every part is one index range;
    their documents are disjoint), `keep` the rest of the report's filter, applied in the worker
    (see `split_match`); a `projection`, an optional `sort` of each read (the reads follow one
    another in their order); no collation, no `$lookup`. `joins` name the dimension data
    `to_row(doc, dimensions)` needs; `after_join(doc, dimensions)`, when set, is a filter that
    needs them (it runs once a batch's dimension documents are joined, before `to_row`; a
    count then reads, joins and filters, `facts.count_facts`); `order(doc, dimensions)`, when
    set, is the key the worker sorts the rows by (in bounded memory, `ordering.py`).
    `slice_field`: a datetime field the reads bound by a range (`$gte` and `$lt`), which is
    then read in consecutive slices (`facts.py`) unless a `sort` starts with another key (or
    with the slice field descending): slices in ascending order, each sorted by the server,
    keep a sort that starts with the slice field ascending."""

    reads: tuple[dict[str, Any], ...]
    keep: Callable[[dict[str, Any]], bool] | None
    projection: dict[str, Any]
    joins: tuple[Join, ...]
    to_row: Callable[[dict[str, Any], Dimensions], Row]
    order: Callable[[dict[str, Any], Dimensions], Any] | None = None
    sort: dict[str, int] | None = None
    slice_field: str | None = None
    after_join: Callable[[dict[str, Any], Dimensions], bool] | None = None
    # Only for a `to_row` that treats naive datetimes as UTC (cheaper BSON decoding).
    naive_datetimes: bool = False
    # A grouping report: every joined batch goes to one `Grouper` (made per run), whose rows
    # are the report's (`to_row`, `order` and the row count are then unused; see `grouped`).
    group: Callable[[], Grouper] | None = None

    def without(self, fields: Iterable[str]) -> FactRead:
        """This read with `fields` left out of its projection (the fields only columns that are
        not shown read: `to_row` then finds them missing, as it finds an empty field); the
        fields its reads, sort and slices walk stay."""
        walked = {self.slice_field, *(k for read in self.reads for k in read), *(self.sort or {})}
        drop = set(fields) - walked
        if not drop & self.projection.keys():
            return self
        kept = {k: v for k, v in self.projection.items() if k not in drop}
        return replace(self, projection=kept)


class Grouper(Protocol):
    """A grouping report's figures, added up in the worker from the fact documents the read
    hands out (with their dimensions joined), then its rows."""

    def add(self, docs: list[dict[str, Any]], dims: Dimensions) -> None: ...

    def rows(self) -> list[Row]: ...


def grouped(
    reads: tuple[dict[str, Any], ...],
    keep: Callable[[dict[str, Any]], bool] | None,
    projection: dict[str, Any],
    joins: tuple[Join, ...],
    group: Callable[[], Grouper],
    slice_field: str | None,
    sort: dict[str, int] | None = None,
) -> FactRead:
    """A fact read whose documents are grouped in the worker: the database walks an index
    range and hands out a few fields, the adding up is the worker's (which scales out with
    the workers instead of loading the one database)."""
    return FactRead(
        reads=reads, keep=keep, projection=projection, joins=joins, to_row=_no_fact_row,
        slice_field=slice_field, naive_datetimes=True, group=group, sort=sort,
    )  # fmt: skip


def _no_fact_row(doc: dict[str, Any], dims: Dimensions) -> Row:
    raise TypeError("a grouped read's rows come from its Grouper")


@dataclass(frozen=True)
class Plan:
    """One run's read: the aggregation `pipeline`, how a result document becomes a row, the
    aggregate `options` (collation, hint) and whether datetimes may be decoded naive (only for
    a `to_row` that treats naive datetimes as UTC). With `facts`, the read is that `FactRead`
    instead (and `pipeline` / `to_row` are unused)."""

    pipeline: list[Stage]
    to_row: Callable[[dict[str, Any]], Row]
    options: Mapping[str, Any] = field(default_factory=dict)
    naive_datetimes: bool = False
    facts: FactRead | None = None

    @classmethod
    def of_facts(cls, facts: FactRead) -> Plan:
        return cls([], _no_row, facts=facts)


def _no_row(doc: dict[str, Any]) -> Row:
    raise TypeError("a fact read builds its rows with its dimensions (FactRead.to_row)")


def split_match(
    match: dict[str, Any], index: Sequence[str], *, naive: bool = False
) -> tuple[tuple[dict[str, Any], ...], Callable[[dict[str, Any]], bool] | None]:
    """`match` as index reads over the fields `index` (in its key order) plus a predicate
    for the rest: a `$in` on an index field becomes one read per value, so every read is an
    equality prefix and a range the index answers alone (servers then never fall back to a
    scan, and no hint is needed). `naive`: datetimes are decoded naive UTC, so bounds are too."""
    reads: list[dict[str, Any]] = [{}]
    for name in index:
        cond = match[name]
        values = cond["$in"] if isinstance(cond, dict) and "$in" in cond else None
        if values is None:
            reads = [{**r, name: cond} for r in reads]
        else:
            reads = [{**r, name: v} for r in reads for v in sorted(set(values))]
    tests = [_test(name, cond, naive) for name, cond in match.items() if name not in index]
    if not tests:
        return tuple(reads), None

    def keep(doc: dict[str, Any]) -> bool:
        return all(t(doc) for t in tests)

    return tuple(reads), keep


def _bound(value: Any, naive: bool) -> Any:
    if naive and isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _test(name: str, cond: Any, naive: bool) -> Callable[[dict[str, Any]], bool]:
    """One field's `$match` condition as Python, as the server compares: equality, `$in`,
    `$nin`, `$ne` and range bounds (a value of another type than the bound never matches)."""
    if not isinstance(cond, dict):
        return lambda doc: doc.get(name) == cond
    checks = [_check(op, arg, naive) for op, arg in cond.items()]

    def test(doc: dict[str, Any]) -> bool:
        value = doc.get(name)
        return all(check(value) for check in checks)

    return test


def _check(op: str, arg: Any, naive: bool) -> Callable[[Any], bool]:
    if op == "$in":
        allowed = set(arg)
        return lambda value: value in allowed
    if op == "$nin":
        barred = set(arg)
        return lambda value: value not in barred
    if op == "$ne":
        return lambda value: value != arg
    if op in _RANGE:
        bound = _bound(arg, naive)
        kind = datetime if isinstance(bound, datetime) else type(bound)
        compare = _RANGE[op]
        return lambda value: isinstance(value, kind) and compare(value, bound)
    raise ValueError(f"no worker-side test for {op}")


_RANGE: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
}


def object_ids(ids: Iterable[str]) -> list[ObjectId]:
    return sorted(ObjectId(i) for i in ids if ObjectId.is_valid(i))


def effective_ids(
    requested: Sequence[str] | None, allowed: Iterable[str] | None
) -> list[str] | None:
    """The ids a fetch must stay within: the requested filter intersected with the scope;
    None when neither restricts."""
    sets = [set(x) for x in (requested, allowed) if x is not None]
    if not sets:
        return None
    return sorted(set.intersection(*sets))


def scope_match(
    scope: DataScope,
    *,
    departments: Sequence[str] | None = None,
    courses: Sequence[str] | None = None,
    department_field: str | None = "department_id",
    course_field: str | None = "course_id",
    user_field: str | None = "user_id",
) -> dict[str, Any]:
    """`$match` conditions for the scope and the requested departments / courses filters."""
    match: dict[str, Any] = {}
    if department_field:
        department_ids = effective_ids(departments, scope.department_ids)
        if department_ids is not None:
            match[department_field] = {"$in": object_ids(department_ids)}
    if course_field:
        course_ids = effective_ids(courses, scope.course_ids)
        if course_ids is not None:
            match[course_field] = {"$in": object_ids(course_ids)}
    if user_field and scope.user_id is not None:
        # A learner sees only its own data; an id that is not an ObjectId matches nothing.
        match[user_field] = (
            ObjectId(scope.user_id) if ObjectId.is_valid(scope.user_id) else {"$in": []}
        )
    return match


def range_match(date_range: StoredRange) -> dict[str, datetime]:
    return {"$gte": date_range.start, "$lt": date_range.end}


def lookup_one(source: str, local_field: str, target: str, fields: Mapping[str, int]) -> list[Any]:
    """Joins one document (by `_id`) and keeps only `fields`; a missing match leaves `target`
    absent rather than dropping the row."""
    return [
        {
            "$lookup": {
                "from": source,
                "localField": local_field,
                "foreignField": "_id",
                "pipeline": [{"$project": dict(fields)}],
                "as": target,
            }
        },
        {"$unwind": {"path": f"${target}", "preserveNullAndEmptyArrays": True}},
    ]


def count_stage() -> dict[str, Any]:
    # `$group` rather than `$count` so the same building block works inside `$lookup`
    # sub-pipelines on every server we run against.
    return {"$group": {"_id": None, "n": {"$sum": 1}}}


async def stream(
    collection: AsyncCollection[Any],
    pipeline: list[dict[str, Any]],
    batch_size: int,
    to_row: Callable[[dict[str, Any]], Row],
    *,
    naive_datetimes: bool = False,
    **options: Any,
) -> AsyncGenerator[list[Row]]:
    """Runs `pipeline` with a server cursor and yields rows in batches of `batch_size`.

    `naive_datetimes=True` decodes datetimes without a timezone (~30% cheaper BSON decoding);
    only for a `to_row` that treats naive datetimes as UTC (`utc()` or `naive_utc()`)."""
    if naive_datetimes:
        collection = collection.with_options(
            codec_options=collection.codec_options.with_options(tz_aware=False, tzinfo=None)
        )
    cursor = await collection.aggregate(
        pipeline, batchSize=batch_size, allowDiskUse=True, **options
    )
    try:
        # A batch at a time: `async for` over the cursor costs a coroutine chain per document.
        # An empty batch from a cursor that is still open (possible on sharded clusters) is
        # not the end.
        while True:
            docs = await cursor.to_list(batch_size)
            if docs:
                yield [to_row(doc) for doc in docs]
            elif not cursor.alive:
                break
    finally:
        await cursor.close()


async def aggregate_count(
    collection: AsyncCollection[Any], pipeline: list[dict[str, Any]], **options: Any
) -> int:
    cursor = await collection.aggregate([*pipeline, count_stage()], allowDiskUse=True, **options)
    docs = await cursor.to_list()
    return int(docs[0]["n"]) if docs else 0


async def count_rows(collection: AsyncCollection[Any], stages: list[Stage]) -> int:
    """The number of documents `stages` produce; a lone `$match` is counted with
    `count_documents` (an index count, no aggregation). Fact reads count with
    `facts.count_facts` instead."""
    if len(stages) == 1 and list(stages[0]) == ["$match"]:
        return await collection.count_documents(stages[0]["$match"])
    return await aggregate_count(collection, stages)
