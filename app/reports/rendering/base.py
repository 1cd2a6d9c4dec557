"""The renderers' shared vocabulary: columns, the render context, the row-writer interface.

Renderers are pure: rows in, file out. A row is a tuple in column order whose values are
``str``, ``int``, ``float``, ``bool``, ``None``, ``datetime.date`` or ``datetime.datetime``
(naive ones are UTC, as MongoDB stores them; aware ones may be in any zone); datetimes are
printed in the report's timezone.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from app.i18n import _, current_locale, human_formats
from app.reports.rendering.rowindex import RowIndex

if TYPE_CHECKING:
    from app.reports.rendering.charts import ChartSpec
    from app.reports.rendering.totals import TotalsRow


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
    # Stated under "Definitions" although its type usually explains itself (a date whose
    # meaning needs saying, such as a period's start).
    explained: bool = False
    # The cells carry their own label (`LabelledCode`: a quiz's id and title), which PDF and
    # Excel print.
    labelled: bool = False
    unit: str | None = None  # what a number counts in ("min", "h"); a percent column's is "%"

    @property
    def unit_shown(self) -> str | None:
        """The unit a reader is told: the declared one, "%" for a percent column."""
        return self.unit or ("%" if self.type is ColumnType.PERCENT else None)

    def figure(self, value: int | float | str | None, type: ColumnType | None = None) -> Figure:
        """A summary figure measuring what this column measures, with its definition, in the
        current locale (`app.i18n.use_locale`); `type` when the figure's differs (a count of the
        rows a flag column marks)."""
        return Figure(
            self.key,
            _(self.label),
            value,
            type or self.type,
            _(self.description) if self.description else "",
            locale=current_locale(),
        )


@dataclass(frozen=True)
class Figure:
    """One summary figure: its value as computed (typed, so a spreadsheet gets a number) and
    its definition, which comes from where the figure is computed (a report type's column, or a
    measure of its summary). A figure reads as its (label, text) pair: ``label, text = f``."""

    key: str
    label: str
    value: int | float | str | None
    type: ColumnType = ColumnType.STRING
    definition: str = ""
    # The locale its label and definition are written in, and its text formatted for.
    locale: str = "en"

    @property
    def text(self) -> str:
        """The value as people read it in the figure's locale: counts with thousands
        separators, numbers with 1 decimal, rates with 1 decimal and "%", an empty figure as
        "—" ("1,234.5", "49.6%" in `en`; "1.234,5", "49,6 %" in `de`)."""
        value = self.value
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "—"
        if isinstance(value, str | bool):
            return str(value)
        formats = human_formats(self.locale)
        if self.type is ColumnType.PERCENT:
            return formats.percent(value)
        if self.type is ColumnType.INTEGER and isinstance(value, int):
            return formats.integer(value)
        return formats.decimal(value, 1)

    def __iter__(self) -> Iterator[str]:
        return iter((self.label, self.text))


class LabelledCode(str):
    """A code that carries the label people read (a quiz's id and its title): CSV prints the
    code, PDF and Excel the label (``present.Presentation``)."""

    label: str

    def __new__(cls, code: str, label: str) -> LabelledCode:
        value = super().__new__(cls, code)
        value.label = label
        return value

    def __reduce__(self) -> tuple[type[LabelledCode], tuple[str, str]]:
        return (LabelledCode, (str(self), self.label))


ParameterValue = str | int  # a parameter as a file states it: text, or a whole number


@dataclass(frozen=True)
class ChangeSection:
    """A change report in the file: "Changes since <date>" with the counts in words and the
    first changes (change, row, field, before, after); `total` changes in all."""

    heading: str
    summary: str
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    total: int = 0
    header: tuple[str, ...] = ("Change", "Row", "Field", "Before", "After")
    more: str = "… and {count} more changes in the list of changes."  # {count} filled in


@dataclass(frozen=True)
class RenderContext:
    """What a renderer needs to know about the report besides its rows."""

    title: str
    report_type: str
    format: str
    timezone: str  # IANA name; datetimes are printed in this zone
    generated_at: datetime  # aware
    parameters: list[tuple[str, ParameterValue]] = field(default_factory=list)  # (label, value)
    summary: list[Figure] = field(default_factory=list)
    # What the figures mean: (label, definition) of the shown columns and summary figures.
    definitions: list[tuple[str, str]] = field(default_factory=list)
    # What each summary figure means, by its label (where the report type states it).
    figure_definitions: dict[str, str] = field(default_factory=dict)
    total_rows: int | None = None  # rows the full report has (for the PDF truncation notice)
    row_cap: int | None = None  # the PDF detail-row cap in force
    requested_by: str | None = None
    report_name: str = ""  # the report type's name ("Learner progress"); the title when empty
    # The language of every text the file prints and the formats of its numbers and dates
    # (a supported code of `app.i18n`; the column labels arrive translated already).
    locale: str = "en"
    # The totals row a file for people ends with (`rendering.totals`; its values arrive with
    # the final context); None: no totals row.
    totals: TotalsRow | None = None
    # The report's charts (`rendering.charts`), computed in the same pass as the summary; none
    # when the job's `options.charts` is false.
    charts: list[ChartSpec] = field(default_factory=list)
    # A scheduled change report's section (Excel sheet, PDF section); None: not one.
    changes: ChangeSection | None = None

    @property
    def language(self) -> str:
        """The BCP 47 tag of the report's language: the PDF's ``lang`` and ``/Lang``."""
        return self.locale

    @property
    def type_name(self) -> str:
        return self.report_name or self.title

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
    # The offsets of every 1,000th row once the file is complete (None: not readable by offset).
    row_index: RowIndex | None

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None: ...

    def close(self, summary: Sequence[Figure] | None = None) -> None: ...

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

    @property
    def row_index(self) -> RowIndex | None:
        """Where every 1,000th row starts in the finished file (CSV, JSON Lines), stored
        beside it; None for a file whose rows cannot be read back by offset."""
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

    @property
    def row_index(self) -> RowIndex | None:
        return self.writer.row_index

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
    "ChangeSection",
    "Column",
    "ColumnType",
    "Figure",
    "LabelledCode",
    "LocalTimes",
    "ParameterValue",
    "RenderContext",
    "RenderError",
    "RowSink",
    "RowWriter",
    "WriterSink",
    "neutralise_formula",
]
