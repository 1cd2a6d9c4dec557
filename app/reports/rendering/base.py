"""The renderers' shared vocabulary: columns, the render context, the row-writer interface.

Renderers are pure: rows in, file out. A row is a tuple in column order whose values are
``str``, ``int``, ``float``, ``bool``, ``None``, ``datetime.date`` or ``datetime.datetime``
(naive ones are UTC, as MongoDB stores them; aware ones may be in any zone); datetimes are
printed in the report's timezone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import cached_property
from typing import Any, Protocol
from zoneinfo import ZoneInfo


class ColumnType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    PERCENT = "percent"  # a percentage 0-100 (85.3 means 85.3 %), not a fraction
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    type: ColumnType = ColumnType.STRING
    width: int | None = None  # preferred width in characters; estimated when None
    # Only in CSV (for machines): PDF and Excel leave it out (the department tree's `level` and
    # `parentCode`, which PDF and Excel show by indenting the first column instead).
    csv_only: bool = False
    description: str = ""  # what the figure means (the metadata API and the Definitions block)
    lookup: str | None = None  # the lookup category whose labels PDF and Excel print for codes


@dataclass(frozen=True)
class RenderContext:
    """What a renderer needs to know about the report besides its rows."""

    title: str
    report_type: str
    format: str
    timezone: str  # IANA name; datetimes are printed in this zone
    generated_at: datetime  # aware
    parameters: list[tuple[str, str]] = field(default_factory=list)  # (label, value)
    summary: list[tuple[str, str]] = field(default_factory=list)  # (label, value)
    # What the figures mean: (column label, description), stated after the summary.
    definitions: list[tuple[str, str]] = field(default_factory=list)
    total_rows: int | None = None  # rows the full report has (for the PDF truncation notice)
    row_cap: int | None = None  # the PDF detail-row cap in force
    requested_by: str | None = None
    # The language of every text the file prints and the formats of its numbers and dates
    # (a supported code of `app.i18n`; the column labels arrive translated already).
    locale: str = "en"

    @cached_property
    def tz(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    def local(self, value: datetime) -> datetime:
        """``value`` in the report timezone (naive datetimes are taken as UTC)."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.tz)

    @property
    def generated_at_local(self) -> datetime:
        return self.local(self.generated_at)


_HOUR = timedelta(hours=1)
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"})


class LocalTimes:
    """Fast UTC -> report-timezone conversion for millions of cells.

    A zone's offset changes a few times a year, so the offset is looked up once per UTC hour
    (and only trusted when it is the same at both ends of that hour; an hour containing a
    change is converted value by value). ``iso`` gives ISO 8601 with seconds and offset
    (``2024-03-31T03:30:00+02:00``), ``naive`` the local wall-clock time without tzinfo (what
    spreadsheet cells hold). Both take naive UTC or aware datetimes.
    """

    _MAX_HOURS = 200_000  # cached hours before the cache starts over (bounded memory)

    def __init__(self, timezone: str) -> None:
        self.tz: tzinfo = ZoneInfo(timezone)
        self.is_utc = timezone in _UTC_NAMES
        self._hours: dict[tuple[int, int, int, int], tuple[timedelta, str] | None] = {}

    def _shift(self, utc_naive: datetime) -> tuple[timedelta, str] | None:
        key = (utc_naive.year, utc_naive.month, utc_naive.day, utc_naive.hour)
        try:
            return self._hours[key]
        except KeyError:
            pass
        if len(self._hours) >= self._MAX_HOURS:
            self._hours.clear()
        hour = datetime(*key, tzinfo=UTC)
        start = hour.astimezone(self.tz)
        end = (hour + _HOUR - timedelta(microseconds=1)).astimezone(self.tz)
        offset = start.utcoffset()
        shift = None
        if offset is not None and offset == end.utcoffset():
            shift = (offset, start.isoformat()[19:])
        self._hours[key] = shift
        return shift

    def iso(self, value: datetime) -> str:
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if self.is_utc:
            return value.isoformat(timespec="seconds") + "+00:00"
        shift = self._shift(value)
        if shift is None:
            return value.replace(tzinfo=UTC).astimezone(self.tz).isoformat(timespec="seconds")
        return (value + shift[0]).isoformat(timespec="seconds") + shift[1]

    def naive(self, value: datetime) -> datetime:
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if self.is_utc:
            return value
        shift = self._shift(value)
        if shift is None:
            return value.replace(tzinfo=UTC).astimezone(self.tz).replace(tzinfo=None)
        return value + shift[0]


class RowWriter(Protocol):
    """A streaming file writer: call ``write_rows`` with batches, then ``close`` once.

    ``close(summary=...)`` optionally takes summary figures that only became known while
    streaming (they replace ``context.summary``; the Excel "Parameters" sheet shows them).
    """

    rows_written: int

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None: ...

    def close(self, summary: Sequence[tuple[str, str]] | None = None) -> None: ...

    def abort(self) -> None:
        """Gives up: closes and removes what was written so far."""
        ...


class RowSink(Protocol):
    """Where a report's rows go, batch by batch, as they are fetched: CSV, Excel and PDF.

    ``add`` each batch, then ``finish`` once with the final context (summary figures and the
    total row count are only known at the end); ``abort`` on failure or cancellation (it stops
    any work in flight, removes temporary files and never raises). ``rows_written`` is the rows
    the file holds (a PDF keeps at most its cap).
    """

    @property
    def rows_written(self) -> int: ...

    @property
    def rows_laid_out(self) -> int:
        """Rows already turned into the file (a PDF lays rows out in chunks, after the fetch
        for the most part); the job's progress follows it."""
        ...

    def expect_rows(self, total: int | None) -> None:
        """The report's row count, once known (a PDF sizes its render chunks from it)."""
        ...

    async def add(self, batch: Sequence[tuple[Any, ...]]) -> None: ...

    async def finish(self, context: RenderContext) -> None: ...

    def abort(self) -> None: ...


class WriterSink:
    """A ``RowSink`` over a blocking ``RowWriter`` (CSV, Excel): writes run in a thread so
    the event loop (and the job's heartbeat) stays responsive."""

    def __init__(self, writer: RowWriter) -> None:
        self.writer = writer

    @property
    def rows_written(self) -> int:
        return self.writer.rows_written

    @property
    def rows_laid_out(self) -> int:
        return self.writer.rows_written

    def expect_rows(self, total: int | None) -> None:
        """A streamed file does not depend on the row count."""

    async def add(self, batch: Sequence[tuple[Any, ...]]) -> None:
        await asyncio.to_thread(self.writer.write_rows, batch)

    async def finish(self, context: RenderContext) -> None:
        await asyncio.to_thread(self.writer.close, context.summary)

    def abort(self) -> None:
        # Failed or cancelled: drop the writer's temporary files now rather than closing a
        # half-written file (the caller removes the file itself).
        with contextlib.suppress(Exception):
            self.writer.abort()


class RenderError(RuntimeError):
    """A renderer could not produce its file (e.g. a write was refused or a render process died)."""


# Cells starting with one of these could be run as a formula by a spreadsheet program.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """Prefix ``'`` to a string that a spreadsheet would read as a formula (OWASP CSV injection).

    Only ever applied to string values: numbers (negative ones included) stay numbers.
    """
    if text and text[0] in FORMULA_TRIGGERS:
        return "'" + text
    return text


__all__ = [
    "FORMULA_TRIGGERS",
    "Column",
    "ColumnType",
    "LocalTimes",
    "RenderContext",
    "RenderError",
    "RowSink",
    "RowWriter",
    "WriterSink",
    "neutralise_formula",
]
