"""CSV: RFC 4180 (``\\r\\n`` line ends, minimal quoting), UTF-8, header row of column labels.

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
memory stays constant however many rows are written.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any

from app.reports.rendering.base import Column, RenderContext, neutralise_formula

_BUFFER_BYTES = 1 << 20


def _cell_converter(tz: tzinfo) -> Callable[[Any], Any]:
    """One value -> what ``csv.writer`` should print for it."""

    def convert(value: Any) -> Any:
        if value is None:
            return ""
        kind = type(value)
        if kind is str:
            return neutralise_formula(value) if value else value
        if kind is int:
            return value
        if kind is float:
            return value if math.isfinite(value) else ""
        if kind is bool:
            return "true" if value else "false"
        if isinstance(value, datetime):
            if value.tzinfo is None:  # stored datetimes are UTC
                value = value.replace(tzinfo=UTC)
            return value.astimezone(tz).isoformat(timespec="seconds")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else ""
        # Anything else (Decimal, enum, ObjectId...) is printed as text.
        return neutralise_formula(str(value))

    return convert


class CsvRowWriter:
    """Streams rows to a CSV file (see the module docstring for the format)."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[Column],
        context: RenderContext,
        *,
        bom: bool = False,
    ) -> None:
        self.path = path
        self.columns = list(columns)
        self.context = context
        self.rows_written = 0
        self._width = len(self.columns)
        self._convert = _cell_converter(context.tz)
        self._file = open(  # noqa: SIM115 - closed in close()
            path,
            "w",
            encoding="utf-8-sig" if bom else "utf-8",
            newline="",
            buffering=_BUFFER_BYTES,
        )
        # The "excel" dialect is RFC 4180: comma, double-quote escaping, QUOTE_MINIMAL.
        self._writer = csv.writer(self._file, dialect="excel", lineterminator="\r\n")
        self._writer.writerow([neutralise_formula(c.label) for c in self.columns])

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        convert = self._convert
        width = self._width
        for row in rows:
            if len(row) != width:
                raise ValueError(f"row has {len(row)} values, expected {width} (one per column)")
        self._writer.writerows([[convert(v) for v in row] for row in rows])
        self.rows_written += len(rows)

    def close(self, summary: Sequence[tuple[str, str]] | None = None) -> None:
        """Flushes and closes the file (``summary`` is not part of a CSV file)."""
        if not self._file.closed:
            self._file.close()

    def abort(self) -> None:
        """Closes the file without caring about its content (the caller deletes it)."""
        self.close()
