"""Sorted keyset pagination: the one way every list endpoint pages (jobs, templates, schedules,
schedule runs, deliveries, webhooks, the audit trail and the filter options).

A list declares its `Sorting`: the fields it may be sorted by (`SortField`: the API name, the
stored path, how a cursor carries its value) and its default. A request's `sort` is one of those
names, `-name` for descending; ties are broken by `_id` in the same direction, so the order is
total and stable (a field whose values never repeat needs no tie-break). A cursor is an opaque
position, never an offset: the sort it was made for, the last item's sort value and id, and how
many items came before it. It reads on correctly while items are added or removed; a cursor made
for another sort is a 422, as is an unknown sort field (naming the allowed ones).

Every page also answers `total`, counted with the same filter when that is cheap: a count of at
most `COUNT_LIMIT` documents within `COUNT_BUDGET_MS` on the server. Past either, `total` is
null and `totalAtLeast` a lower bound (the limit, or the items seen up to the end of this page).

What follows a cursor is read as consecutive plain ranges of an index on (filter fields...,
sort field, _id), each a flat filter without `$or`: the ties of the last value past its id, the
values past it, and, descending on a nullable field, the nulls; the next range is read only
when the page is not full yet. MongoDB sorts null (and missing) before every other value; a
nullable field keeps that order (nulls first ascending, last descending)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from beanie import Document
from bson import ObjectId
from bson.errors import InvalidId
from fastapi import Query
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import ExecutionTimeout

from app.common.schemas import Page, decode_cursor, encode_cursor
from app.errors import ValidationFailed

COUNT_LIMIT = 10_000
COUNT_BUDGET_MS = 250

SORT_FIELD = "query.sort"
CURSOR_FIELD = "query.cursor"

Kind = Literal["datetime", "string", "integer"]
T = TypeVar("T")
Out = TypeVar("Out")
Doc = TypeVar("Doc", bound=Document)


@dataclass(frozen=True)
class SortField:
    """One field a list may be sorted by."""

    name: str  # in the API (camelCase): `createdAt`
    path: str  # stored: `created_at`
    kind: Kind
    description: str
    nullable: bool = False  # may be null or missing: nulls first ascending, last descending
    unique: bool = False  # no two documents share a value: no tie-break on _id needed

    def __post_init__(self) -> None:
        if self.unique and self.nullable:  # nulls would tie: they need the id
            raise ValueError(f"{self.name}: a unique sort field is never null")

    def read(self, doc: dict[str, Any]) -> Any:
        value: Any = doc
        for part in self.path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def encode(self, value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    def decode(self, raw: Any) -> Any:
        """A cursor's value back in the stored type; ValueError when it cannot be one."""
        if raw is None:
            if self.nullable:
                return None
            raise ValueError("null position on a field that is never null")
        if self.kind == "datetime" and isinstance(raw, str):
            moment = datetime.fromisoformat(raw)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if self.kind == "string" and isinstance(raw, str):
            return raw
        if self.kind == "integer" and isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        raise ValueError(f"not a {self.kind}")


@dataclass(frozen=True)
class Sort:
    field: SortField
    descending: bool

    @property
    def token(self) -> str:
        return f"-{self.field.name}" if self.descending else self.field.name

    def spec(self) -> list[tuple[str, int]]:
        """The server's sort: the field, then `_id`, both in the requested direction."""
        direction = DESCENDING if self.descending else ASCENDING
        if self.field.unique:
            return [(self.field.path, direction)]
        return [(self.field.path, direction), ("_id", direction)]

    def after(self, value: Any, last_id: ObjectId) -> list[dict[str, Any]]:
        """The documents that come after (value, last_id) in this order, as the conditions of
        consecutive ranges, each one plain range of an index on (filter..., field, _id): the
        ties of `value` past `last_id`, then the values past `value`, then (descending on a
        nullable field) the nulls, which come last."""
        path = self.field.path
        past = "$lt" if self.descending else "$gt"
        if self.field.unique:
            return [{path: {past: value}}]
        ties = {path: value, "_id": {past: last_id}}
        if value is None:  # nulls come first ascending, last descending
            return [ties] if self.descending else [ties, {path: {"$gte": FLOOR[self.field.kind]}}]
        ranges = [ties, {path: {past: value}}]
        if self.descending and self.field.nullable:
            ranges.append({path: None})
        return ranges


# The least value of each kind: `{field: {"$gte": FLOOR}}` is every value that is not null (a
# comparison only matches values of its own type).
FLOOR: dict[Kind, Any] = {
    "datetime": datetime(1, 1, 1, tzinfo=UTC),
    "string": "",
    "integer": -(2**63),
}
_UPPER, _LOWER = ("$lt", "$lte"), ("$gt", "$gte")


def within(query: dict[str, Any], condition: dict[str, Any]) -> dict[str, Any]:
    """`query` and `condition` as one flat filter (a field both name gets the tighter bounds),
    so the server sees plain index ranges: SecantusDB, the test server, reads an index only for
    a flat conjunction (no `$and` / `$or`). Conditions that do not merge go into an `$and`."""
    merged = dict(query)
    for path, wanted in condition.items():
        if path not in merged:
            merged[path] = wanted
            continue
        both = _merge(merged[path], wanted)
        if both is None:
            return {"$and": [query, condition]}
        merged[path] = both
    return merged


def _operators(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value and all(str(k).startswith("$") for k in value):
        return dict(value)
    return {"$eq": value}


def _merge(have: Any, wanted: Any) -> dict[str, Any] | None:
    merged = _operators(have)
    for op, value in _operators(wanted).items():
        if op not in merged:
            merged[op] = value
            continue
        try:
            if op in _UPPER:
                merged[op] = min(merged[op], value)
            elif op in _LOWER:
                merged[op] = max(merged[op], value)
            elif merged[op] != value:
                return None
        except TypeError:
            return None
    return merged


@dataclass(frozen=True)
class Position:
    """Where the previous page ended: its last item's sort value and id, and the items before
    the next page (for `totalAtLeast`)."""

    value: Any
    last_id: ObjectId
    seen: int


@dataclass(frozen=True)
class PageRequest:
    sort: Sort
    limit: int
    position: Position | None = None


@dataclass(frozen=True)
class Sorting:
    """The sort fields a list documents, and its default (`-createdAt`)."""

    fields: tuple[SortField, ...]
    default: str

    def __post_init__(self) -> None:
        self.parse(self.default)  # a default that is not one of the fields is a bug

    @property
    def tokens(self) -> list[str]:
        return [t for f in self.fields for t in (f.name, f"-{f.name}")]

    def parse(self, value: str | None) -> Sort:
        text = (value or self.default).strip()
        descending = text.startswith("-")
        name = text[1:] if descending else text
        for field in self.fields:
            if field.name == name:
                return Sort(field, descending)
        raise ValidationFailed.one(
            SORT_FIELD,
            f"cannot sort by {name!r}; sort by one of {', '.join(f.name for f in self.fields)} "
            "(prefix `-` for descending)",
            type="sort-unknown",
            allowed=self.tokens,
        )

    def request(self, sort: str | None, cursor: str | None, limit: int) -> PageRequest:
        """The page a list request asks for: its sort and where the cursor left off. 422 for
        an unknown sort field, a cursor that is not one of ours or one made for another sort."""
        chosen = self.parse(sort)
        return PageRequest(chosen, limit, self._position(chosen, cursor) if cursor else None)

    def _position(self, sort: Sort, cursor: str) -> Position:
        try:
            raw = decode_cursor(cursor)
            made_for = raw.get("s")
            if made_for is None:  # a cursor from before lists took `sort`: the default order
                made_for = self.default
                raw = {"v": raw["c"] if "c" in raw else raw["k"], "i": raw["i"], "n": 0}
            seen = raw.get("n", 0)
            if not isinstance(seen, int) or isinstance(seen, bool) or seen < 0:
                raise ValueError("not a count")
            value = sort.field.decode(raw["v"])
            last_id = ObjectId(str(raw["i"]))
        except (ValueError, KeyError, TypeError, InvalidId) as exc:
            raise ValidationFailed.one(
                CURSOR_FIELD, "not a valid cursor", type="cursor-invalid"
            ) from exc
        if made_for != sort.token:
            raise ValidationFailed.one(
                CURSOR_FIELD,
                f"this cursor continues a list sorted by {made_for!r}, not {sort.token!r}: "
                f"send sort={made_for} with it, or start again without a cursor",
                type="cursor-sort-mismatch",
            )
        return Position(value, last_id, seen)

    def describe(self, intro: str = "") -> str:
        lines = [f"- `{f.name}`: {f.description}" for f in self.fields]
        return (
            f"{intro}Sort by one of these fields, `-field` for descending (default "
            f"`{self.default}`); ties are broken by id in the same direction, so the order is "
            "stable and a cursor continues exactly where its page ended. A cursor made for one "
            "sort is refused with another (422).\n\n" + "\n".join(lines)
        )

    def query(self, intro: str = "") -> Any:
        """The `sort` query parameter of a list endpoint (its default `self.default`),
        documented with its fields."""
        return sort_query(self.describe(intro), self.tokens)


def sort_query(description: str, tokens: Sequence[str]) -> Any:
    """A `sort` query parameter whose allowed values are an enum in the contract (of its string
    branch when it may be absent); an unknown one is a 422 listing them (`Sorting.parse`)."""

    def enum(schema: dict[str, Any]) -> None:
        branches = schema.get("anyOf") or [schema]
        for branch in branches:
            if branch.get("type") == "string":
                branch["enum"] = list(tokens)

    return Query(max_length=64, description=description, json_schema_extra=enum)


@dataclass(frozen=True)
class Listed(Generic[T]):
    """One page of a list, with its total (exact or a lower bound)."""

    items: list[T]
    next_cursor: str | None
    total: int | None
    total_at_least: int

    def page(self, convert: Callable[[T], Out]) -> Page[Out]:
        return self.as_page([convert(item) for item in self.items])

    def as_page(self, items: Sequence[Out]) -> Page[Out]:
        return Page[Out](
            items=list(items),
            next_cursor=self.next_cursor,
            total=self.total,
            total_at_least=self.total_at_least,
        )


async def bounded_count(collection: Any, query: dict[str, Any]) -> tuple[int | None, int]:
    """(the exact count or None, a lower bound): exact when at most `COUNT_LIMIT` documents
    match and the server counts them within `COUNT_BUDGET_MS`."""
    try:
        counted = int(
            await collection.count_documents(
                query, limit=COUNT_LIMIT + 1, maxTimeMS=COUNT_BUDGET_MS
            )
        )
    except ExecutionTimeout:
        return None, 0
    return (counted, counted) if counted <= COUNT_LIMIT else (None, COUNT_LIMIT)


async def paginate_raw(
    collection: Any, query: dict[str, Any], request: PageRequest
) -> Listed[dict[str, Any]]:
    """One page of `collection`'s documents matching `query` in the request's order, after its
    position; the cursor to the next page; and the total."""
    sort, position = request.sort, request.position
    docs, (total, at_least) = await asyncio.gather(
        _read(collection, query, request), bounded_count(collection, query)
    )
    seen = (position.seen if position else 0) + min(len(docs), request.limit)
    next_cursor = None
    if len(docs) > request.limit:
        docs = docs[: request.limit]
        last = docs[-1]
        next_cursor = encode_cursor(
            {
                "s": sort.token,
                "v": sort.field.encode(sort.field.read(last)),
                "i": str(last["_id"]),
                "n": seen,
            }
        )
        seen += 1  # there is at least one more
    if total is None:
        at_least = max(at_least, seen)
    return Listed(docs, next_cursor, total, at_least)


async def _read(
    collection: Any, query: dict[str, Any], request: PageRequest
) -> list[dict[str, Any]]:
    """Up to `limit + 1` documents in order after the request's position (one more tells
    whether there is a next page), range after range until that many are found."""
    wanted, sort, position = request.limit + 1, request.sort, request.position
    ranges = [{}] if position is None else sort.after(position.value, position.last_id)
    docs: list[dict[str, Any]] = []
    for condition in ranges:
        found = collection.find(within(query, condition)).sort(sort.spec())
        docs += await found.limit(wanted - len(docs)).to_list()
        if len(docs) >= wanted:
            break
    return docs


async def paginate(document: type[Doc], query: dict[str, Any], request: PageRequest) -> Listed[Doc]:
    """`paginate_raw` over a document type's collection, the items loaded as documents."""
    raw = await paginate_raw(document.get_pymongo_collection(), query, request)
    return Listed(
        [document.model_validate(d) for d in raw.items],
        raw.next_cursor,
        raw.total,
        raw.total_at_least,
    )


def created_at(what: str) -> SortField:
    """The sort field every stored document has: when it was created."""
    return SortField("createdAt", "created_at", "datetime", f"when {what} was created")


def sort_indexes(sorting: Sorting, *prefixes: tuple[str, ...]) -> list[IndexModel]:
    """The indexes that serve a list in every documented order: for each equality filter the
    list always has (`prefixes`; `()` for a list without one) and each sort field, one on
    (prefix..., field, _id), which MongoDB reads forwards or backwards for either direction
    and whose keys bound the keyset condition. Keys run in the list's default direction. A
    unique field needs no `_id`; without a prefix its unique index already serves it."""
    default = sorting.parse(sorting.default)
    indexes = []
    for prefix in prefixes:
        for field in sorting.fields:
            if field.unique and not prefix:
                continue
            direction = DESCENDING if field is default.field and default.descending else ASCENDING
            keys = [(p, ASCENDING) for p in prefix] + [(field.path, direction)]
            if not field.unique:
                keys.append(("_id", direction))
            indexes.append(IndexModel(keys))
    return indexes
