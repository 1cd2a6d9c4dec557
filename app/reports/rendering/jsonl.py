"""JSON Lines (one JSON document a line, UTF-8, ``\\n`` line ends) for programs.

The first line is the header: what the report is, its columns (key, label, type, unit,
definition), its parameters, its summary figures (each with its definition where the report
type states one), the definitions of its figures, its row count and, unless the job's
`options.charts` is false, its charts (`charts`: key, title, description and a Vega-Lite v5
`spec` with its data inline). Every further line is one row: an object keyed by column key, in
column order.

Values are the ones a CSV file holds, typed: numbers as numbers (a percent column holds the
percentage, 85.3 means 85.3 %), booleans as ``true`` / ``false``, an empty cell as ``null``,
datetimes as ISO 8601 strings in the report timezone with their offset (seconds precision, as in
CSV), dates as ISO dates. Strings are written as they are: no formula neutralising, JSON is not
opened by spreadsheets.

The header needs the summary, which is known only once every row is written, so the rows go to a
temporary file beside ``path`` as they come (constant memory) and ``finish`` writes the header
and then copies the rows after it. ``row_index`` holds the byte offset of every 1,000th row of
the finished file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from app.i18n import DEFAULT_LOCALE
from app.reports.rendering.base import (
    Column,
    ColumnType,
    Figure,
    LocalTimes,
    RenderContext,
    WriterSink,
)
from app.reports.rendering.charts import ChartSpec, vega_lite
from app.reports.rendering.rowindex import INDEX_EVERY, RowIndex

_BUFFER_BYTES = 1 << 20
_INF = math.inf
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

ColumnValues = Callable[[Sequence[Any]], list[Any]]


def _value_converter(times: LocalTimes) -> Callable[[Any], Any]:
    """One value of any type -> its JSON value (the general case)."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, datetime):
            return times.iso(value)
        if isinstance(value, date):
            return value.isoformat()
        return str(value)  # Decimal, enum, ObjectId...

    return convert


def _column_values(kind: ColumnType, times: LocalTimes) -> ColumnValues:
    """Converts one column of a batch: the column's declared type on a fast path."""
    other = _value_converter(times)
    if kind in (ColumnType.STRING, ColumnType.INTEGER, ColumnType.BOOLEAN):
        return lambda col: [v if v.__class__ in (str, int, bool) else other(v) for v in col]
    if kind in (ColumnType.NUMBER, ColumnType.PERCENT):
        return lambda col: [
            v if v.__class__ is float and -_INF < v < _INF else other(v) for v in col
        ]
    if kind is ColumnType.DATETIME:
        iso = times.iso
        return lambda col: [iso(v) if v.__class__ is datetime else other(v) for v in col]
    return lambda col: [other(v) for v in col]


class JsonRows:
    """Rows (tuples in column order) -> JSON objects keyed by column key, with the values a
    JSON Lines file holds (see the module docstring)."""

    def __init__(self, columns: Sequence[Column], timezone: str) -> None:
        times = LocalTimes(timezone)
        self.keys = [c.key for c in columns]
        self._convert = [_column_values(c.type, times) for c in columns]

    def objects(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        if not rows:
            return []
        width = len(self.keys)
        for row in rows:
            if len(row) != width:
                raise ValueError(f"row has {len(row)} values, expected {width} (one per column)")
        columns = zip(*rows, strict=True)
        converted = [convert(col) for convert, col in zip(self._convert, columns, strict=True)]
        keys = self.keys
        return [dict(zip(keys, values, strict=True)) for values in zip(*converted, strict=True)]


def column_document(column: Column) -> dict[str, Any]:
    """A column as the header (and the JSON API) describes it."""
    return {
        "key": column.key,
        "label": column.label,
        "type": column.type.value,
        "unit": column.unit_shown,
        "definition": column.description or None,
    }


def figure_documents(context: RenderContext) -> list[dict[str, Any]]:
    """The summary figures: label, value as printed, definition (None where not stated)."""
    return [
        {
            "label": figure.label,
            # Machine text in every locale (`1,234`, `49.6%`); the words are the locale's.
            "value": replace(figure, locale=DEFAULT_LOCALE).text,
            "definition": figure.definition or context.figure_definitions.get(figure.label),
        }
        for figure in context.summary
    ]


def chart_document(chart: ChartSpec) -> dict[str, Any]:
    """A chart as the header and the preview carry it: key, title, description and its
    Vega-Lite v5 specification with the data inline."""
    return {
        "key": chart.key,
        "title": chart.title,
        "description": chart.description,
        "spec": vega_lite(chart),
    }


def header_document(columns: Sequence[Column], context: RenderContext, rows: int) -> dict[str, Any]:
    document: dict[str, Any] = {
        "report": {
            "type": context.report_type,
            "title": context.title,
            "format": context.format,
            "timezone": context.timezone,
            "generatedAt": context.generated_at.isoformat(timespec="seconds"),
            "requestedBy": context.requested_by,
        },
        "columns": [column_document(c) for c in columns],
        "parameters": [{"label": k, "value": v} for k, v in context.parameters],
        "summary": figure_documents(context),
        "definitions": [{"label": k, "definition": v} for k, v in context.definitions],
        "rowCount": rows,
    }
    if context.charts:  # a header without charts is the one it always was
        document["charts"] = [chart_document(c) for c in context.charts]
    return document


class JsonLinesRowWriter:
    """Streams rows to a JSON Lines file (see the module docstring for the format)."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[Column],
        context: RenderContext,
        *,
        index_every: int = INDEX_EVERY,
    ) -> None:
        self.path = path
        self.columns = list(columns)
        self.context = context
        self.rows_written = 0
        self._json = JsonRows(self.columns, context.timezone)
        self._rows_path = path.with_name(f"{path.name}.rows")
        self._rows = self._rows_path.open("wb", buffering=_BUFFER_BYTES)
        self._bytes = 0  # of rows written to the temporary file
        self._index = RowIndex(index_every)
        self.row_index: RowIndex | None = None  # once the file is complete

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        index = self._index
        lines = []
        written, size = self.rows_written, self._bytes
        for obj in self._json.objects(rows):
            line = (_encode(obj) + "\n").encode()
            if index.due(written):
                index.note(size)
            lines.append(line)
            written += 1
            size += len(line)
        self._rows.write(b"".join(lines))
        self.rows_written, self._bytes = written, size

    def close(self, summary: Sequence[Figure] | None = None) -> None:
        """Completes the file with the writer's own context (its summary replaced by
        `summary` when given); `finish` with the final context is what a job calls."""
        context = self.context
        if summary is not None:
            context = replace(context, summary=list(summary))
        self.finish(context)

    def finish(self, context: RenderContext) -> None:
        """Writes the header (with the final summary and row count), then the rows."""
        if self._rows.closed:
            return
        self._rows.close()
        document = header_document(self.columns, context, self.rows_written)
        header = (_encode(document) + "\n").encode()
        with self.path.open("wb") as out:
            out.write(header)
            with self._rows_path.open("rb") as rows:
                shutil.copyfileobj(rows, out, _BUFFER_BYTES)
        self._rows_path.unlink(missing_ok=True)
        self._index.finish(self.rows_written, self._bytes)
        self.row_index = self._index.shifted(len(header))

    def abort(self) -> None:
        """Closes and removes the temporary rows (the caller deletes the file itself)."""
        with contextlib.suppress(OSError):
            self._rows.close()
        self._rows_path.unlink(missing_ok=True)


class JsonLinesSink(WriterSink):
    """The JSON Lines writer as a `RowSink`: its header is written with the final context."""

    writer: JsonLinesRowWriter

    def __init__(self, writer: JsonLinesRowWriter) -> None:
        super().__init__(writer)
        self.writer = writer

    async def finish(self, context: RenderContext) -> None:
        await asyncio.to_thread(self.writer.finish, context)


__all__ = [
    "JsonLinesRowWriter",
    "JsonLinesSink",
    "JsonRows",
    "chart_document",
    "column_document",
    "figure_documents",
    "header_document",
]
