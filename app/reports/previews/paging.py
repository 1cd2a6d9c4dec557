"""Pages of a report's rows: the requested sort, the rows a page keeps while the read goes by
and the cursors that carry a page's position.

A preview's cursor holds the offset of the next page, the instant the first page resolved its
parameters at (so "last 30 days" means the same days on every page) and a fingerprint of the
request and sort it belongs to; a job's rows cursor holds the job and the first row. Both are
opaque to clients.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from app.common.schemas import decode_cursor, encode_cursor
from app.errors import ValidationFailed
from app.reports.reading.ordering import name_key
from app.reports.rendering import Column

Row = tuple[Any, ...]
MAX_SORT_FIELDS = 3


@dataclass(frozen=True)
class SortField:
    key: str
    at: int  # the column's position in a row
    descending: bool

    def text(self) -> str:
        return f"-{self.key}" if self.descending else self.key


def parse_sort(sort: str | None, columns: Sequence[Column]) -> list[SortField]:
    """`score`, `-score` or `-score,learnerName` (at most three columns; `-` descending) over the
    report's column keys; a 422 naming `sort` and the allowed keys otherwise."""
    if not sort:
        return []
    positions = {c.key: i for i, c in enumerate(columns)}
    fields: list[SortField] = []
    for part in (p.strip() for p in sort.split(",")):
        key = part.removeprefix("-")
        if key not in positions or any(f.key == key for f in fields):
            raise ValidationFailed.one(
                "sort",
                f"{part!r} is not a column of this report (or is named twice); sort by one to "
                f"{MAX_SORT_FIELDS} column keys, `-` for descending",
                type="sort_field",
                allowed=list(positions),
            )
        fields.append(SortField(key, positions[key], part.startswith("-")))
    if len(fields) > MAX_SORT_FIELDS:
        raise ValidationFailed.one(
            "sort", f"at most {MAX_SORT_FIELDS} sort fields", type="sort_field"
        )
    return fields


class _Descending:
    """A sort key compared the other way round."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.key == other.key

    __hash__ = None  # type: ignore[assignment]


def value_key(value: Any) -> tuple[Any, ...]:
    """A cell's sort key: empty cells first, names as the report orders them (the name
    collation), datetimes by instant."""
    if value is None:
        return (0,)
    if isinstance(value, str):
        return (1, name_key(value))
    if isinstance(value, datetime):
        return (1, value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    if isinstance(value, bool | int | float | date):
        return (1, value)
    return (1, name_key(str(value)))


class PageKeeper:
    """Keeps the rows `[offset, offset + limit)` of the report as it streams by: in the report's
    order, or in `sort` (ties in the report's order), holding at most twice the rows up to the
    page's end while it reads."""

    def __init__(self, offset: int, limit: int, sort: Sequence[SortField]) -> None:
        self.offset, self.limit, self.sort = offset, limit, list(sort)
        self.total = 0
        self._rows: list[Row] = []
        self._keyed: list[tuple[tuple[Any, ...], int, Row]] = []

    def _key(self, row: Row, number: int) -> tuple[tuple[Any, ...], int, Row]:
        key = tuple(
            _Descending(value_key(row[f.at])) if f.descending else value_key(row[f.at])
            for f in self.sort
        )
        return key, number, row

    def add(self, rows: Sequence[Row]) -> None:
        first = self.total
        self.total += len(rows)
        if not self.sort:
            end = self.offset + self.limit
            if first < end and self.total > self.offset:
                lo, hi = max(self.offset - first, 0), min(end - first, len(rows))
                self._rows.extend(rows[lo:hi])
            return
        keep = self.offset + self.limit
        self._keyed.extend(self._key(row, first + i) for i, row in enumerate(rows))
        if len(self._keyed) > 2 * keep:
            self._keyed = heapq.nsmallest(keep, self._keyed, key=_rank)

    def page(self) -> list[Row]:
        if not self.sort:
            return self._rows
        ordered = heapq.nsmallest(self.offset + self.limit, self._keyed, key=_rank)
        return [row for _, _, row in ordered[self.offset :]]


def _rank(item: tuple[tuple[Any, ...], int, Row]) -> tuple[tuple[Any, ...], int]:
    return item[0], item[1]


# -- cursors --------------------------------------------------------------------------------------


def fingerprint(*parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class PreviewPosition:
    offset: int
    now: datetime


def preview_cursor(offset: int, now: datetime, request: str) -> str:
    return encode_cursor({"o": offset, "n": now.isoformat(), "f": request})


def read_preview_cursor(cursor: str | None, request: str) -> PreviewPosition | None:
    """The position a preview cursor holds; a 422 naming `cursor` when it is not one of ours or
    belongs to another request or sort."""
    if not cursor:
        return None
    try:
        raw = decode_cursor(cursor)
        offset, now = int(raw["o"]), datetime.fromisoformat(raw["n"])
        same = raw["f"] == request
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed.one("cursor", "not a valid cursor") from exc
    if not same or offset < 0 or now.tzinfo is None:
        raise ValidationFailed.one(
            "cursor", "this cursor belongs to another request or sort; start without one"
        )
    return PreviewPosition(offset, now)


@dataclass(frozen=True)
class RowsPosition:
    first: int
    end: int | None  # a page going backwards stops where the page after it begins


def rows_cursor(job_id: str, first: int, end: int | None = None) -> str:
    raw: dict[str, Any] = {"j": job_id, "r": first}
    if end is not None:
        raw["e"] = end
    return encode_cursor(raw)


def read_rows_cursor(cursor: str | None, job_id: str) -> RowsPosition:
    if not cursor:
        return RowsPosition(0, None)
    try:
        raw: Mapping[str, Any] = decode_cursor(cursor)
        first = int(raw["r"])
        end = int(raw["e"]) if "e" in raw else None
        same = raw["j"] == job_id
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed.one("cursor", "not a valid cursor") from exc
    if not same or first < 0 or (end is not None and end < first):
        raise ValidationFailed.one("cursor", "this cursor belongs to another job")
    return RowsPosition(first, end)


__all__ = [
    "PageKeeper",
    "PreviewPosition",
    "RowsPosition",
    "SortField",
    "fingerprint",
    "parse_sort",
    "preview_cursor",
    "read_preview_cursor",
    "read_rows_cursor",
    "rows_cursor",
]
