"""Excel (.xlsx) through XlsxWriter in constant-memory mode.

- Typed cells: numbers are numbers, dates and datetimes are Excel dates (datetimes as the naive
  local time in the report timezone, since Excel has no timezones; the "Parameters" sheet names
  the timezone), booleans are booleans, percent columns hold the fraction (0.853 for the rows'
  85.3) with Excel's percent format ``0.0%``, so formulas over them work as Excel users expect.
- Print-ready: each data sheet prints one page wide (landscape when the columns are wide), the
  header row repeated on every page, the report title in the page header and "Page X of Y" in
  the footer.
- Each data sheet has a bold header row, frozen, with an autofilter over its rows, and column
  widths estimated from the column type, the label and the first batch of rows (constant-memory
  mode cannot look at rows already written).
- A new data sheet every ``rows_per_sheet`` data rows (default 1,048,575: Excel's 1,048,576 rows
  less the header): "Data", "Data (2)", ... A "Parameters" sheet comes last: title, report type,
  parameters, timezone, generated at, requested by, summary figures and the row count.
- XlsxWriter in constant-memory mode does not raise on a row past the sheet limit or written out
  of order: it returns -1 and drops the cell. Every write's return code is checked; anything but
  0 raises ``RenderError``.
- Formula injection: strings are written with ``write_string`` only, so no string is ever stored
  as a formula, and, as in CSV, a string starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
  return gets a leading ``'``. The visible apostrophe is deliberate: the text stays inert when a
  user edits the cell or saves the sheet as CSV and opens it again.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from app.reports.rendering.base import (
    FORMULA_TRIGGERS,
    Column,
    ColumnType,
    LocalTimes,
    RenderContext,
    RenderError,
    neutralise_formula,
)

EXCEL_MAX_ROWS = 1_048_576
MAX_DATA_ROWS_PER_SHEET = EXCEL_MAX_ROWS - 1  # one row is the header
EXCEL_MAX_STRING = 32_767
DATA_SHEET_NAME = "Data"
PARAMETERS_SHEET_NAME = "Parameters"

_NUMBER_FORMATS: dict[ColumnType, str] = {
    ColumnType.INTEGER: "#,##0",
    ColumnType.NUMBER: "#,##0.0##",
    ColumnType.PERCENT: "0.0%",
    ColumnType.DATE: "yyyy-mm-dd",
    ColumnType.DATETIME: "yyyy-mm-dd hh:mm",
}

# Column width (characters) when nothing better is known, and the bounds of an estimate.
_TYPE_WIDTHS: dict[ColumnType, int] = {
    ColumnType.STRING: 18,
    ColumnType.INTEGER: 10,
    ColumnType.NUMBER: 11,
    ColumnType.PERCENT: 9,
    ColumnType.BOOLEAN: 8,
    ColumnType.DATE: 11,
    ColumnType.DATETIME: 17,
}
_MIN_WIDTH, _MAX_WIDTH = 6, 60
# Column widths (characters) a portrait A4 page holds at 100 %; wider sheets print landscape.
PORTRAIT_WIDTH = 100
_TRIGGER_CHARS = "".join(FORMULA_TRIGGERS)


class XlsxRowWriter:
    """Streams rows into an .xlsx workbook (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[Column],
        context: RenderContext,
        *,
        rows_per_sheet: int = MAX_DATA_ROWS_PER_SHEET,
    ) -> None:
        if not 1 <= rows_per_sheet <= MAX_DATA_ROWS_PER_SHEET:
            raise ValueError(f"rows_per_sheet must be 1..{MAX_DATA_ROWS_PER_SHEET}")
        if not columns:
            raise ValueError("a report needs at least one column")
        self.path = path
        self.columns = list(columns)
        self.context = context
        self.rows_per_sheet = rows_per_sheet
        self.rows_written = 0
        self.sheet_names: list[str] = []
        self._times = LocalTimes(context.timezone)
        self._closed = False
        # Constant-memory mode keeps one temp file per sheet; own them so abort() can clean up.
        # They sit beside the workbook, so a job's temporary space is one directory to measure.
        self._tmp = tempfile.TemporaryDirectory(prefix="xlsx-render-", dir=path.parent)
        self._workbook = Workbook(
            str(path),
            {
                "constant_memory": True,
                "tmpdir": self._tmp.name,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        self._workbook.set_properties(
            {"title": context.title, "subject": context.report_type, "comments": "Report"}
        )
        wb = self._workbook
        self._header_format = wb.add_format(
            {"bold": True, "bg_color": "#E8EDF3", "bottom": 1, "text_wrap": True, "valign": "top"}
        )
        self._formats: list[Format | None] = []
        for column in self.columns:
            number_format = _NUMBER_FORMATS.get(column.type)
            self._formats.append(
                wb.add_format({"num_format": number_format}) if number_format else None
            )
        self._percents = frozenset(
            i for i, c in enumerate(self.columns) if c.type is ColumnType.PERCENT
        )
        self._widths: list[float] | None = None
        self._sheet: Worksheet | None = None
        self._sheet_rows = 0  # data rows on the current sheet

    # -- writing -------------------------------------------------------------------------

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if self._closed:
            raise RenderError("write_rows() after close()")
        if not rows:
            return
        if self._widths is None:
            self._widths = self._estimate_widths(rows)
        width = len(self.columns)
        formats = self._formats
        percents = self._percents
        local_time = self._times.naive
        for row in rows:
            if len(row) != width:
                raise ValueError(f"row has {len(row)} values, expected {width} (one per column)")
            if self._sheet is None or self._sheet_rows >= self.rows_per_sheet:
                self._new_sheet()
            sheet = self._sheet
            assert sheet is not None
            self._sheet_rows += 1
            r = self._sheet_rows  # row 0 is the header
            for c, value in enumerate(row):
                if value is None:
                    continue
                kind = type(value)
                if kind is str:
                    if value and value[0] in _TRIGGER_CHARS:
                        value = "'" + value
                    if len(value) > EXCEL_MAX_STRING // 2:
                        value = _fit_string(value)
                    rc = sheet.write_string(r, c, value, formats[c])
                elif kind is int or kind is float:
                    if kind is float and not math.isfinite(value):
                        continue
                    if c in percents:
                        value = value / 100
                    rc = sheet.write_number(r, c, value, formats[c])
                elif kind is bool:
                    rc = sheet.write_boolean(r, c, value, formats[c])
                elif kind is datetime:
                    rc = sheet.write_datetime(r, c, local_time(value), formats[c])
                elif kind is date:
                    rc = sheet.write_datetime(r, c, value, formats[c])
                else:
                    rc = self._write_other(sheet, r, c, value, formats[c])
                if rc != 0:
                    raise RenderError(
                        f"XlsxWriter refused the cell at row {r + 1}, column {c + 1} of sheet "
                        f"{sheet.get_name()!r} (return code {rc})"
                    )
            self.rows_written += 1

    def _write_other(self, sheet: Worksheet, r: int, c: int, value: Any, fmt: Format | None) -> int:
        """Subclasses of the usual types, and anything else as text."""
        if isinstance(value, bool):
            return int(sheet.write_boolean(r, c, bool(value), fmt))
        if isinstance(value, int | float):
            number = float(value) / (100 if c in self._percents else 1)
            return 0 if not math.isfinite(number) else int(sheet.write_number(r, c, number, fmt))
        if isinstance(value, datetime):
            return int(sheet.write_datetime(r, c, self._times.naive(value), fmt))
        if isinstance(value, date):
            return int(sheet.write_datetime(r, c, value, fmt))
        text = _fit_string(neutralise_formula(str(value)))
        return int(sheet.write_string(r, c, text, fmt))

    def _new_sheet(self) -> None:
        n = len(self.sheet_names) + 1
        name = DATA_SHEET_NAME if n == 1 else f"{DATA_SHEET_NAME} ({n})"
        if self._sheet is not None:
            self._finish_sheet(self._sheet, self._sheet_rows)
        sheet = self._workbook.add_worksheet(name)
        self.sheet_names.append(name)
        for c, column in enumerate(self.columns):
            width = self._widths[c] if self._widths else _TYPE_WIDTHS[column.type]
            sheet.set_column(c, c, width)
            rc = sheet.write_string(0, c, neutralise_formula(column.label), self._header_format)
            if rc != 0:
                raise RenderError(f"XlsxWriter refused the header cell {c + 1} (return code {rc})")
        sheet.freeze_panes(1, 0)
        self._print_setup(sheet, landscape=self._is_wide())
        sheet.repeat_rows(0)
        self._sheet = sheet
        self._sheet_rows = 0

    def _is_wide(self) -> bool:
        widths = self._widths or [_TYPE_WIDTHS[c.type] for c in self.columns]
        return sum(widths) > PORTRAIT_WIDTH

    def _print_setup(self, sheet: Worksheet, *, landscape: bool) -> None:
        """One page wide, as many long as needed; the title on top, "Page X of Y" below."""
        if landscape:
            sheet.set_landscape()
        sheet.set_paper(9)  # A4 (Letter users' printers scale it)
        sheet.fit_to_pages(1, 0)
        sheet.set_margins(left=0.4, right=0.4, top=0.75, bottom=0.6)
        sheet.set_header(f'&C&"-,Bold"{_header_text(self.context.title)}', {"margin": 0.3})
        generated = self.context.generated_at_local.strftime("%Y-%m-%d %H:%M")
        stamp = _header_text(f"Generated {generated} ({self.context.timezone})")
        sheet.set_footer(f"&L{stamp}&RPage &P of &N", {"margin": 0.3})

    def _finish_sheet(self, sheet: Worksheet, data_rows: int) -> None:
        sheet.autofilter(0, 0, max(data_rows, 1), len(self.columns) - 1)

    def _estimate_widths(self, rows: Sequence[Sequence[Any]]) -> list[float]:
        sample = rows[:500]
        widths: list[float] = []
        for c, column in enumerate(self.columns):
            if column.width is not None:
                widths.append(float(column.width))
                continue
            # Bold header text is ~10% wider; leave room for the autofilter button.
            label = max((len(word) for word in column.label.split()), default=0) * 1.1 + 3
            label = max(label, min(len(column.label) * 1.1 + 3, 24))
            if column.type in (ColumnType.STRING,):
                lengths = sorted(_text_width(str(row[c])) for row in sample if row[c] is not None)
                # The 90th percentile: a few very long values should not make a huge column.
                data = (
                    lengths[int(len(lengths) * 0.9)] + 1 if lengths else _TYPE_WIDTHS[column.type]
                )
            else:
                data = _TYPE_WIDTHS[column.type]
            widths.append(float(min(max(label, data, _MIN_WIDTH), _MAX_WIDTH)))
        return widths

    # -- closing -------------------------------------------------------------------------

    def close(self, summary: Sequence[tuple[str, str]] | None = None) -> None:
        """Finishes the data sheets, adds the "Parameters" sheet and writes the file."""
        if self._closed:
            return
        try:
            if self._sheet is None:  # no rows at all: still a data sheet with its header
                self._new_sheet()
            assert self._sheet is not None
            self._finish_sheet(self._sheet, self._sheet_rows)
            self._write_parameters_sheet(
                list(summary) if summary is not None else list(self.context.summary)
            )
            self._workbook.close()
            self._closed = True
        finally:
            self._tmp.cleanup()

    def abort(self) -> None:
        """Gives up without writing the workbook; removes the temporary files."""
        self._closed = True
        self._tmp.cleanup()

    def _write_parameters_sheet(self, summary: list[tuple[str, str]]) -> None:
        ctx = self.context
        wb = self._workbook
        sheet = wb.add_worksheet(PARAMETERS_SHEET_NAME)
        title = wb.add_format({"bold": True, "font_size": 14})
        section = wb.add_format({"bold": True, "font_size": 11, "bottom": 1})
        label = wb.add_format({"bold": True, "valign": "top"})
        text = wb.add_format({"text_wrap": True, "valign": "top"})
        count = wb.add_format({"num_format": "#,##0", "align": "left"})
        sheet.set_column(0, 0, 28)
        sheet.set_column(1, 1, 70)
        self._print_setup(sheet, landscape=False)

        row = 0

        def put(values: list[tuple[Any, Format | None]]) -> None:
            nonlocal row
            for c, (value, fmt) in enumerate(values):
                if isinstance(value, int) and not isinstance(value, bool):
                    rc = sheet.write_number(row, c, value, fmt)
                else:
                    rc = sheet.write_string(
                        row, c, _fit_string(neutralise_formula(str(value))), fmt
                    )
                if rc != 0:
                    raise RenderError(f"XlsxWriter refused a Parameters cell (return code {rc})")
            row += 1

        generated = ctx.generated_at_local.strftime("%Y-%m-%d %H:%M %Z").strip()
        put([(ctx.title, title)])
        row += 1
        put([("Report type", label), (ctx.report_type, text)])
        put([("Timezone", label), (ctx.timezone, text)])
        put([("Generated at", label), (f"{generated} ({ctx.timezone})", text)])
        if ctx.requested_by:
            put([("Requested by", label), (ctx.requested_by, text)])
        put([("Rows", label), (self.rows_written, count)])
        if len(self.sheet_names) > 1:
            put([("Data sheets", label), (", ".join(self.sheet_names), text)])
        row += 1
        put([("Parameters", section), ("", section)])
        if ctx.parameters:
            for name, value in ctx.parameters:
                put([(name, label), (value, text)])
        else:
            put([("(none)", text)])
        if summary:
            row += 1
            put([("Summary", section), ("", section)])
            for name, value in summary:
                put([(name, label), (value, text)])
        if ctx.definitions:
            row += 1
            put([("Definitions", section), ("", section)])
            for name, value in ctx.definitions:
                put([(name, label), (value, text)])


def _text_width(text: str) -> int:
    """Characters a value needs; an em space (a tree row's indent) is two wide."""
    return len(text) + text.count("\u2003")


def _header_text(text: str) -> str:
    """Text for a page header: `&` is a control character there, and Excel caps a header at
    255 characters."""
    return text.replace("&", "&&")[:200]


def _fit_string(text: str) -> str:
    """Excel cells hold at most 32,767 characters (UTF-16 units); cut longer text with an ellipsis."""
    if len(text) <= EXCEL_MAX_STRING // 2:
        return text
    encoded = text.encode("utf-16-le")
    if len(encoded) // 2 <= EXCEL_MAX_STRING:
        return text
    cut = encoded[: (EXCEL_MAX_STRING - 1) * 2].decode("utf-16-le", errors="ignore")
    return cut + "…"
