"""Excel (.xlsx): the data rows serialised by us, the rest of the workbook by XlsxWriter.

- The data rows are the file: at 1,000,000 rows XlsxWriter's per-cell path (a call, a tuple
  and a formatted XML element per cell) costs ~94 µs a row, three times the whole rest of the
  report. So each data row is written as SpreadsheetML here, in one string per row, into a
  temporary file per sheet (the same XML XlsxWriter's constant-memory mode writes: inline
  strings, ``%.16G`` numbers, Excel date serials, the same escapes), and XlsxWriter writes the
  workbook around it: the sheets with their header row, column widths, frozen header,
  autofilter and print setup, the styles, the "Parameters" sheet. At close the rows are put
  into their sheets' ``<sheetData>`` while the package is zipped (``_assemble``). The cell
  styles are XlsxWriter's own formats, registered first so their indexes are known.

- Typed cells: numbers are numbers, dates and datetimes are Excel dates (datetimes as the naive
  local time in the report timezone, since Excel has no timezones; the "Parameters" sheet names
  the timezone), booleans are booleans, percent columns hold the fraction (0.853 for the rows'
  85.3) with Excel's percent format ``0.0%``, so formulas over them work as Excel users expect.
- Print-ready: each data sheet prints one page wide (landscape when the columns are wide), the
  header row repeated on every page, the report title in the page header and "Page X of Y" in
  the footer.
- Each data sheet has a bold header row, frozen, with an autofilter over its rows, and column
  widths estimated from the column type, the label and the first batch of rows (the rows are
  streamed: later ones are not kept to look at).
- A new data sheet every ``rows_per_sheet`` data rows (default 1,048,575: Excel's 1,048,576 rows
  less the header): "Data", "Data (2)", ... A "Parameters" sheet comes last: title, report type,
  parameters, timezone, generated at, requested by, summary figures and the row count.
- XlsxWriter in constant-memory mode does not raise on a row past the sheet limit or written out
  of order: it returns -1 and drops the cell. Every write through it (header, Parameters) is
  checked; anything but 0 raises ``RenderError``. Data rows never pass a sheet's limit
  (``rows_per_sheet``).
- Formula injection: strings are always written as text cells, never as formulas, and, as in CSV, a string starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
  return gets a leading ``'``. The visible apostrophe is deliberate: the text stays inert when a
  user edits the cell or saves the sheet as CSV and opens it again. Text that looks like
  SpreadsheetML (``<r>...</r>``), which XlsxWriter would pass through as rich text, is escaped
  like any other text.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from app.reports.rendering.base import (
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
# What text needs besides itself in a cell: XML's special characters, the control characters
# SpreadsheetML writes as _xHHHH_ (and a literal _xHHHH_, whose underscore is escaped), the two
# non-characters.
_NEEDS_ESCAPING = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_LITERAL_ESCAPE = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")
_DIMENSION = re.compile('<dimension ref="[^"]*"/>')
_EPOCH = datetime(1899, 12, 31)  # XlsxWriter's epoch of the 1900 date system
_BUFFER = 1 << 20  # bytes buffered per data sheet's rows file and per copy into the package


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
        # The data rows, XlsxWriter's constant-memory files and the workbook XlsxWriter writes
        # around the rows live here until close; they sit beside the workbook, so a job's
        # temporary space is one directory to measure, and abort() removes them all.
        self._tmp = tempfile.TemporaryDirectory(prefix="xlsx-render-", dir=path.parent)
        self._shell_path = Path(self._tmp.name) / "workbook.xlsx"
        self._workbook = Workbook(
            str(self._shell_path),
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
        # XlsxWriter numbers styles in the order they are first used: the header's first.
        _style_index(self._header_format)
        self._cells = _CellWriter(self.columns, [_style_index(f) for f in self._formats])
        self._widths: list[float] | None = None
        self._sheet: Worksheet | None = None
        self._sheet_rows = 0  # data rows on the current sheet
        self._sheets: list[_SheetRows] = []  # the data rows of each data sheet, in order

    # -- writing -------------------------------------------------------------------------

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if self._closed:
            raise RenderError("write_rows() after close()")
        if not rows:
            return
        if self._widths is None:
            self._widths = self._estimate_widths(rows)
        width = len(self.columns)
        local_time = self._times.naive
        row_xml = self._cells.row_xml
        start = 0
        while start < len(rows):
            if self._sheet is None or self._sheet_rows >= self.rows_per_sheet:
                self._new_sheet()
            sheet_rows = self._sheets[-1]
            take = rows[start : start + self.rows_per_sheet - self._sheet_rows]
            for row in take:
                if len(row) != width:
                    raise ValueError(
                        f"row has {len(row)} values, expected {width} (one per column)"
                    )
                self._sheet_rows += 1
                self.rows_written += 1
                r = self._sheet_rows + 1  # Excel's row number: row 1 is the header
                xml = row_xml(r, row, local_time)
                if xml:
                    sheet_rows.write(xml)
                    sheet_rows.last_row = r
            start += len(take)

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
        # XlsxWriter names a workbook's n-th sheet xl/worksheets/sheet{n}.xml; data sheets are
        # added first, so this is the data sheet's part in the package.
        self._sheets.append(_SheetRows(Path(self._tmp.name) / f"rows-{n}.xml", n))

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
            for sheet_rows in self._sheets:
                sheet_rows.close()
            self._workbook.close()
            assembled = Path(self._tmp.name) / "assembled.xlsx"
            _assemble(
                self._shell_path, assembled, self._sheets, xl_col_to_name(len(self.columns) - 1)
            )
            assembled.replace(self.path)
            self._closed = True
        finally:
            for sheet_rows in self._sheets:
                sheet_rows.close()
            self._tmp.cleanup()

    def abort(self) -> None:
        """Gives up without writing the workbook; removes the temporary files."""
        self._closed = True
        for sheet_rows in self._sheets:
            sheet_rows.close()
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
        if not generated.endswith(ctx.timezone):  # "… CET (Europe/Berlin)", not "… UTC (UTC)"
            generated = f"{generated} ({ctx.timezone})"
        put([("Generated at", label), (generated, text)])
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


class _SheetRows:
    """One data sheet's ``<row>`` elements, in a temporary file until the workbook is zipped."""

    def __init__(self, path: Path, sheet_number: int) -> None:
        self.path = path
        self.part = f"xl/worksheets/sheet{sheet_number}.xml"
        self.last_row = 1  # Excel's number of the last row with a cell (1: the header)
        self._file = path.open("w", encoding="utf-8", newline="", buffering=_BUFFER)
        self.write = self._file.write

    def close(self) -> None:
        self._file.close()


class _CellWriter:
    """One data row as SpreadsheetML, as XlsxWriter's constant-memory mode writes it: ``<row
    r="n">`` with a ``<c>`` per non-empty cell (``r`` its reference, ``s`` its style when the
    column has a number format), text as an inline string, numbers as ``%.16G``, booleans as
    ``t="b"``, dates as Excel serials. A row without any value is left out, as XlsxWriter does."""

    def __init__(self, columns: Sequence[Column], styles: Sequence[int | None]) -> None:
        self._refs = [xl_col_to_name(c) for c in range(len(columns))]
        self._styles = [f' s="{index}"' if index is not None else "" for index in styles]
        self._percents = frozenset(i for i, c in enumerate(columns) if c.type is ColumnType.PERCENT)

    def row_xml(
        self, r: int, row: Sequence[Any], local_time: Callable[[datetime], datetime]
    ) -> str:
        cells: list[str] = []
        add = cells.append
        refs = self._refs
        styles = self._styles
        percents = self._percents
        for c, value in enumerate(row):
            if value is None:
                continue
            kind = type(value)
            if kind is str:
                add(f'<c r="{refs[c]}{r}"{styles[c]} t="inlineStr"><is>{_text(value)}</is></c>')
            elif kind is int or kind is float:
                if kind is float and not math.isfinite(value):
                    continue
                if c in percents:
                    value = value / 100
                add(f'<c r="{refs[c]}{r}"{styles[c]}><v>{value:.16G}</v></c>')
            elif kind is datetime:
                add(f'<c r="{refs[c]}{r}"{styles[c]}><v>{_serial(local_time(value)):.16G}</v></c>')
            elif kind is bool:
                add(f'<c r="{refs[c]}{r}"{styles[c]} t="b"><v>{1 if value else 0}</v></c>')
            elif kind is date:
                add(f'<c r="{refs[c]}{r}"{styles[c]}><v>{_serial(value):.16G}</v></c>')
            else:
                cell = self._other(c, value, local_time)
                if cell is not None:
                    add(f'<c r="{refs[c]}{r}"{styles[c]}{cell}</c>')
        return f'<row r="{r}">{"".join(cells)}</row>' if cells else ""

    def _other(self, c: int, value: Any, local_time: Callable[[datetime], datetime]) -> str | None:
        """Subclasses of the usual types, and anything else as text: the cell's content after
        its reference and style, or None for no cell."""
        if isinstance(value, bool):
            return f' t="b"><v>{1 if value else 0}</v>'
        if isinstance(value, int | float):
            number = float(value) / (100 if c in self._percents else 1)
            return f"><v>{number:.16G}</v>" if math.isfinite(number) else None
        if isinstance(value, datetime):
            return f"><v>{_serial(local_time(value)):.16G}</v>"
        if isinstance(value, date):
            return f"><v>{_serial(value):.16G}</v>"
        return f' t="inlineStr"><is>{_text(str(value))}</is>'


def _text(value: str) -> str:
    """A string's ``<t>`` element: formula triggers neutralised, cut to Excel's limit, control
    characters as ``_xHHHH_`` (a literal ``_xHHHH_`` escaped as ``_x005F_xHHHH_``), XML escaped,
    ``xml:space="preserve"`` when it starts or ends with white space."""
    value = neutralise_formula(value)
    if len(value) > EXCEL_MAX_STRING // 2:
        value = _fit_string(value)
    if _NEEDS_ESCAPING.search(value) is not None:
        value = _LITERAL_ESCAPE.sub(r"_x005F\1", value)
        value = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", value)
        value = value.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if value and (value[0].isspace() or value[-1].isspace()):
        return f'<t xml:space="preserve">{value}</t>'
    return f"<t>{value}</t>"


def _serial(value: datetime | date) -> float:
    """Excel's serial of a naive datetime or a date in the 1900 date system, computed as
    XlsxWriter computes it: days since 1899-12-31, plus one after February 1900 for the 29
    February 1900 Excel counts (and, as XlsxWriter does, one less for a time on 1900-01-01)."""
    if type(value) is datetime and value.year > 1900:
        delta = value - _EPOCH
        return delta.days + (float(delta.seconds) + float(delta.microseconds) / 1e6) / 86400 + 1
    moment = value if isinstance(value, datetime) else datetime.fromordinal(value.toordinal())
    delta = moment - _EPOCH
    serial = delta.days + (float(delta.seconds) + float(delta.microseconds) / 1e6) / 86400
    if isinstance(value, datetime) and moment.isocalendar() == (1900, 1, 1):
        serial -= 1
    return serial + 1 if serial > 59 else serial


def _style_index(fmt: Format | None) -> int | None:
    """The cell style index XlsxWriter gives ``fmt`` in this workbook (registering the format,
    as writing a cell with it would)."""
    return None if fmt is None else int(fmt._get_xf_index())


def _assemble(shell: Path, target: Path, sheets: Sequence[_SheetRows], last_column: str) -> None:
    """Zips XlsxWriter's workbook ``shell`` into ``target`` with each data sheet's rows put after
    its header row (and its ``<dimension>`` extended over them), the file's parts in the same
    order and compressed the same way."""
    by_part = {sheet.part: sheet for sheet in sheets}
    with (
        zipfile.ZipFile(shell) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as package,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, info.date_time)
            entry.compress_type = info.compress_type
            entry.external_attr = info.external_attr
            rows = by_part.pop(info.filename, None)
            if rows is None:
                package.writestr(entry, source.read(info))
                continue
            head, end, tail = source.read(info).decode("utf-8").partition("</sheetData>")
            if not end:
                raise RenderError(f"{info.filename} has no <sheetData> to put the rows in")
            if rows.last_row > 1:
                dimension = f'<dimension ref="A1:{last_column}{rows.last_row}"/>'
                head = _DIMENSION.sub(dimension, head, count=1)
            before, after = head.encode("utf-8"), (end + tail).encode("utf-8")
            entry.file_size = len(before) + rows.path.stat().st_size + len(after)
            with package.open(entry, "w") as out, rows.path.open("rb") as data:
                out.write(before)
                shutil.copyfileobj(data, out, _BUFFER)
                out.write(after)
    if by_part:
        raise RenderError(f"the workbook has no part for the data sheets {sorted(by_part)}")
