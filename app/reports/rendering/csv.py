"""CSV: RFC 4180 (``\\r\\n`` line ends, minimal quoting), UTF-8, header row of column labels.

The field delimiter and the decimal separator of numbers are the writer's ``delimiter`` and
``decimal`` (by default ``,`` and ``.``; the job's locale picks them, e.g. ``;`` and ``,`` for
German, so Excel set to that language opens the file into columns with numbers it reads).

Values: datetimes ISO 8601 in the report timezone with their offset (seconds precision,
``2024-03-31T02:30:00+02:00``), dates ISO (``2024-03-31``), booleans ``true``/``false``,
numbers as Python prints them (percent columns hold the percentage, 85.3 means 85.3 %),
``None`` (and NaN/infinity) as an empty field.

``bom`` defaults to False: the file is plain UTF-8, which every program and script reads
correctly; pass ``bom=True`` for users who open the file by double-clicking it in Excel,
which otherwise guesses a legacy code page for non-ASCII text.

Formula injection: a *string* value starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading ``'`` so a spreadsheet shows it as text instead of evaluating it. Numbers
are never touched (``-5`` stays ``-5``). Rows go through a buffered file handle as they come, so
memory stays constant however many rows are written. Given ``output`` (a binary stream), the
writer writes there instead of creating ``path``: the bytes go on to storage as they are made.

``row_index`` holds the byte offset of every 1,000th data row (``rowindex.RowIndex``), noted
as the rows are written, so a reader can start at any row with one ranged read.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from app.reports.rendering.base import (
    FORMULA_TRIGGERS,
    Column,
    ColumnType,
    Figure,
    LocalTimes,
    RenderContext,
    neutralise_formula,
)
from app.reports.rendering.rowindex import INDEX_EVERY, CountingWriter, RowIndex

_BUFFER_BYTES = 1 << 20
_TRIGGERS = frozenset(FORMULA_TRIGGERS)
_INF = math.inf

ColumnConverter = Callable[[Sequence[Any]], list[Any]]


def _cell_converter(times: LocalTimes) -> Callable[[Any], Any]:
    """One value of any type -> what ``csv.writer`` should print for it (the general case)."""

    def convert(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            return neutralise_formula(str(value))
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else ""
        if isinstance(value, datetime):
            return times.iso(value)
        if isinstance(value, date):
            return value.isoformat()
        # Anything else (Decimal, enum, ObjectId...) is printed as text.
        return neutralise_formula(str(value))

    return convert


def _decimal_comma(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` with floats printed with a decimal comma (``12,5``)."""

    def comma(value: Any) -> Any:
        out = convert(value)
        return repr(out).replace(".", ",") if out.__class__ is float else out

    return comma


def _column_converter(kind: ColumnType, times: LocalTimes, decimal: str = ".") -> ColumnConverter:
    """Converts one column of a batch at a time: the values of the column's declared type
    take an inline fast path, anything else (None included) the general converter."""
    other = _cell_converter(times)
    if decimal != ".":
        other = _decimal_comma(other)
    if kind is ColumnType.STRING:
        return lambda col: [
            v if v.__class__ is str and v[:1] not in _TRIGGERS else other(v) for v in col
        ]
    if kind is ColumnType.INTEGER:
        return lambda col: [v if v.__class__ is int else other(v) for v in col]
    if kind in (ColumnType.NUMBER, ColumnType.PERCENT) and decimal != ".":
        return lambda col: [
            repr(v).replace(".", decimal) if v.__class__ is float and -_INF < v < _INF else other(v)
            for v in col
        ]
    if kind in (ColumnType.NUMBER, ColumnType.PERCENT):
        return lambda col: [
            v if v.__class__ is float and -_INF < v < _INF else other(v) for v in col
        ]
    if kind is ColumnType.BOOLEAN:
        return lambda col: [
            ("true" if v else "false") if v.__class__ is bool else other(v) for v in col
        ]
    if kind is ColumnType.DATETIME:
        if times.is_utc:  # naive values are UTC already: print them with the offset
            return lambda col: [
                v.isoformat(timespec="seconds") + "+00:00"
                if v.__class__ is datetime and v.tzinfo is None
                else other(v)
                for v in col
            ]
        iso = times.iso
        return lambda col: [iso(v) if v.__class__ is datetime else other(v) for v in col]
    return lambda col: [other(v) for v in col]


class CsvRowWriter:
    """Streams rows to a CSV file (see the module docstring for the format)."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[Column],
        context: RenderContext,
        *,
        bom: bool = False,
        output: io.RawIOBase | None = None,
        index_every: int = INDEX_EVERY,
        delimiter: str = ",",
        decimal: str = ".",
    ) -> None:
        if delimiter == decimal:
            raise ValueError("the CSV delimiter and the decimal separator must differ")
        self.path = path
        self.columns = list(columns)
        self.context = context
        self.rows_written = 0
        self._width = len(self.columns)
        times = LocalTimes(context.timezone)
        self._converters = [_column_converter(c.type, times, decimal) for c in self.columns]
        encoding = "utf-8-sig" if bom else "utf-8"
        # The bytes pass a counter on their way out: a row's offset is the count once the
        # buffers above it are flushed.
        target = output if output is not None else io.FileIO(path, "w")
        self._counter = CountingWriter(target)
        buffered = io.BufferedWriter(self._counter, _BUFFER_BYTES)
        self._file = io.TextIOWrapper(buffered, encoding=encoding, newline="")
        # The "excel" dialect is RFC 4180: double-quote escaping, QUOTE_MINIMAL (a field holding
        # the delimiter is quoted).
        self._writer = csv.writer(
            self._file, dialect="excel", delimiter=delimiter, lineterminator="\r\n"
        )
        self._writer.writerow([neutralise_formula(c.label) for c in self.columns])
        self.row_index: RowIndex | None = RowIndex(index_every)

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        width = self._width
        for row in rows:
            if len(row) != width:
                raise ValueError(f"row has {len(row)} values, expected {width} (one per column)")
        index = self.row_index
        assert index is not None
        start = 0
        while start < len(rows):
            # Up to the next indexed row, whose offset is noted before it is written.
            written = self.rows_written
            if index.due(written):
                self._file.flush()
                index.note(self._counter.count)
            part = rows[start : start + index.every - written % index.every]
            # Column by column: one specialised pass per column instead of a call per cell.
            columns = zip(*part, strict=True)
            converted = [
                convert(col) for convert, col in zip(self._converters, columns, strict=True)
            ]
            self._writer.writerows(zip(*converted, strict=True))
            self.rows_written += len(part)
            start += len(part)

    def close(self, summary: Sequence[Figure] | None = None) -> None:
        """Flushes and closes the file (``summary`` is not part of a CSV file)."""
        if not self._file.closed:
            self._file.close()
            if self.row_index is not None:
                self.row_index.finish(self.rows_written, self._counter.count)

    def abort(self) -> None:
        """Closes the file without caring about its content (the caller deletes it)."""
        self.close()
