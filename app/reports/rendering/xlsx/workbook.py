"""The workbook around the rows: ``XlsxRowWriter`` writes the data rows through ``CellWriter``
into a file per data sheet and has XlsxWriter write the rest (header rows, widths, frozen
panes, autofilter, print setup, styles, the "Parameters" sheet); ``close`` has ``assemble``
zip them together."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from app.i18n import N_, human_formats, locale_spec, translate
from app.reports.rendering.base import (
    Column,
    ColumnType,
    Figure,
    LocalTimes,
    RenderContext,
    RenderError,
    WriterSink,
    neutralise_formula,
)
from app.reports.rendering.rowindex import RowIndex
from app.reports.rendering.xlsx.cells import CellWriter
from app.reports.rendering.xlsx.changes import write_changes_sheet
from app.reports.rendering.xlsx.charts import write_charts_sheet
from app.reports.rendering.xlsx.package import SheetRows, assemble
from app.reports.rendering.xlsx.parameters import write_parameters_sheet
from app.reports.rendering.xlsx.totals import MAX_OUTLINE_LEVEL, outlined, totals_row_xml

EXCEL_MAX_ROWS = 1_048_576
MAX_DATA_ROWS_PER_SHEET = EXCEL_MAX_ROWS - 1  # one row is the header
DATA_SHEET_NAME = N_("Data")

_NUMBER_FORMATS: dict[ColumnType, str] = {
    ColumnType.INTEGER: "#,##0",
    ColumnType.NUMBER: "#,##0.0##",
    ColumnType.PERCENT: "0.0%",
    ColumnType.DATE: "yyyy-mm-dd",
    ColumnType.DATETIME: "yyyy-mm-dd hh:mm",
}

# Types Excel aligns on the right (numbers, and dates, which are numbers): their headers too.
_RIGHT_ALIGNED = frozenset(
    {
        ColumnType.INTEGER,
        ColumnType.NUMBER,
        ColumnType.PERCENT,
        ColumnType.DATE,
        ColumnType.DATETIME,
    }
)
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


class XlsxRowWriter:
    """Streams rows into an .xlsx workbook (see the package docstring)."""

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
        # The totals row (its values come with the final context: `XlsxSink`) takes one row
        # below the last sheet's data.
        self.totals = context.totals
        if self.totals is not None:
            rows_per_sheet = min(rows_per_sheet, MAX_DATA_ROWS_PER_SHEET - 1)
        self.rows_per_sheet = rows_per_sheet
        self.rows_written = 0
        self.row_index: RowIndex | None = None  # a workbook's rows cannot be read by offset
        self.sheet_names: list[str] = []
        self._times = LocalTimes(context.timezone)
        self._locale = context.locale
        spec = locale_spec(context.locale)
        # Cells stay typed (Excel shows numbers with the reader's separators itself); dates
        # take the locale's order of day, month and year.
        number_formats = {
            **_NUMBER_FORMATS,
            ColumnType.DATE: spec.excel_date,
            ColumnType.DATETIME: spec.excel_datetime,
        }
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
            {"title": context.title, "subject": context.type_name, "comments": "Report"}
        )
        wb = self._workbook
        header = {"bold": True, "bg_color": "#E8EDF3", "bottom": 1, "text_wrap": True}
        # A header sits like its column's values: numbers and dates on the right, text on the
        # left (Excel aligns cells by their type).
        self._header_format = wb.add_format({**header, "valign": "top"})
        self._header_right = wb.add_format({**header, "valign": "top", "align": "right"})
        self._formats: list[Format | None] = []
        for column in self.columns:
            number_format = number_formats.get(column.type)
            self._formats.append(
                wb.add_format({"num_format": number_format}) if number_format else None
            )
        # XlsxWriter numbers styles in the order they are first used: the headers' first.
        _style_index(self._header_format)
        _style_index(self._header_right)
        self._cells = CellWriter(self.columns, [_style_index(f) for f in self._formats])
        self._total_styles = self._totals_styles(number_formats)
        # A department tree's rows are outlined by their level (collapse a subtree, show a
        # level), with the `level` and `parentCode` columns the CSV has.
        keys = [c.key for c in self.columns]
        self._level_at = keys.index("level") if {"level", "parentCode"} <= set(keys) else None
        self._outline_depth = 0
        self._widths: list[float] | None = None
        self._sheet: Worksheet | None = None
        self._sheet_rows = 0  # data rows on the current sheet
        self._sheets: list[SheetRows] = []  # the data rows of each data sheet, in order

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
                if self._level_at is not None:
                    xml = self._outlined(xml, row[self._level_at])
                if xml:
                    sheet_rows.write(xml)
                    sheet_rows.last_row = r
            start += len(take)

    def _totals_styles(self, number_formats: dict[ColumnType, str]) -> list[int | None]:
        """The totals row's cell styles: bold, a rule above, the number format its total
        shows in."""
        if self.totals is None:
            return []
        styles: list[int | None] = []
        for column in self.columns:
            total = self.totals.totals.get(column.key)
            shown = total.shown_as(column) if total is not None else column.type
            spec: dict[str, Any] = {"bold": True, "top": 1}
            if shown in number_formats:
                spec["num_format"] = number_formats[shown]
            styles.append(_style_index(self._workbook.add_format(spec)))
        return styles

    def _outlined(self, xml: str, level: Any) -> str:
        if isinstance(level, int) and not isinstance(level, bool):
            self._outline_depth = max(self._outline_depth, min(level, MAX_OUTLINE_LEVEL))
        return outlined(xml, level)

    def _new_sheet(self) -> None:
        n = len(self.sheet_names) + 1
        data = self._t(DATA_SHEET_NAME)
        name = data if n == 1 else f"{data} ({n})"
        if self._sheet is not None:
            self._finish_sheet(self._sheet, self._sheet_rows)
        sheet = self._workbook.add_worksheet(name)
        self.sheet_names.append(name)
        for c, column in enumerate(self.columns):
            width = self._widths[c] if self._widths else _TYPE_WIDTHS[column.type]
            sheet.set_column(c, c, width)
            header = self._header_right if column.type in _RIGHT_ALIGNED else self._header_format
            rc = sheet.write_string(0, c, neutralise_formula(column.label), header)
            if rc != 0:
                raise RenderError(f"XlsxWriter refused the header cell {c + 1} (return code {rc})")
        sheet.freeze_panes(1, 0)
        self._print_setup(sheet, landscape=self._is_wide())
        sheet.repeat_rows(0)
        if self._level_at is not None:
            # The tree's summary rows are above their subtrees: the collapse buttons too.
            sheet.outline_settings(True, False, True, False)
        self._sheet = sheet
        self._sheet_rows = 0
        # XlsxWriter names a workbook's n-th sheet xl/worksheets/sheet{n}.xml; data sheets are
        # added first, so this is the data sheet's part in the package.
        self._sheets.append(SheetRows(Path(self._tmp.name) / f"rows-{n}.xml", n))

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
        generated = human_formats(self._locale).datetime(self.context.generated_at_local)
        stamp = _header_text(
            self._t("Generated {generated} ({timezone})").format(
                generated=generated, timezone=self.context.timezone
            )
        )
        pages = _header_text(self._t("Page {page} of {pages}")).format(page="&P", pages="&N")
        sheet.set_footer(f"&L{stamp}&R{pages}", {"margin": 0.3})

    def _t(self, message: str) -> str:
        return translate(self._locale, message)

    def _finish_sheet(self, sheet: Worksheet, data_rows: int) -> None:
        sheet.autofilter(0, 0, max(data_rows, 1), len(self.columns) - 1)
        if self._outline_depth:
            sheet.outline_row_level = self._outline_depth  # <sheetFormatPr outlineLevelRow>

    def _write_totals(self) -> None:
        """The totals row below the last sheet's data: over the data rows of every sheet."""
        if self.totals is None or not self.rows_written:
            return
        rows = self._sheets[-1]
        r = self._sheet_rows + 2
        sheets = [
            (name, s.last_row) for name, s in zip(self.sheet_names, self._sheets, strict=True)
        ]
        sheets[-1] = (sheets[-1][0], self._sheet_rows + 1)
        rows.write(totals_row_xml(self.totals, self.columns, r, sheets, self._total_styles))
        rows.last_row = r

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

    def close(self, summary: Sequence[Figure] | None = None) -> None:
        """Finishes the data sheets, adds the "Parameters" sheet and writes the file."""
        if self._closed:
            return
        try:
            if self._sheet is None:  # no rows at all: still a data sheet with its header
                self._new_sheet()
            assert self._sheet is not None
            self._finish_sheet(self._sheet, self._sheet_rows)
            self._write_totals()
            write_parameters_sheet(
                self._workbook,
                self.context,
                list(summary) if summary is not None else list(self.context.summary),
                rows_written=self.rows_written,
                sheet_names=self.sheet_names,
                print_setup=lambda sheet: self._print_setup(sheet, landscape=False),
            )
            write_charts_sheet(
                self._workbook,
                self.context.charts,
                self._locale,
                lambda sheet: self._print_setup(sheet, landscape=True),
            )
            write_changes_sheet(
                self._workbook,
                self.context.changes,
                lambda sheet: self._print_setup(sheet, landscape=True),
            )
            for sheet_rows in self._sheets:
                sheet_rows.close()
            self._workbook.close()
            assembled = Path(self._tmp.name) / "assembled.xlsx"
            assemble(
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


class XlsxSink(WriterSink):
    """The workbook writer as a `RowSink`: its "Charts" sheet and its totals row come from the
    final context (both are known once every row has been read)."""

    writer: XlsxRowWriter

    def __init__(self, writer: XlsxRowWriter) -> None:
        super().__init__(writer)
        self.writer = writer

    async def finish(self, context: RenderContext) -> None:
        self.writer.context = replace(
            self.writer.context, charts=list(context.charts), changes=context.changes
        )
        if self.writer.totals is not None and context.totals is not None:
            self.writer.totals = context.totals
        await asyncio.to_thread(self.writer.close, context.summary)


def _text_width(text: str) -> int:
    """Characters a value needs; an em space (a tree row's indent) is two wide."""
    return len(text) + text.count("\u2003")


def _header_text(text: str) -> str:
    """Text for a page header: `&` is a control character there, and Excel caps a header at
    255 characters."""
    return text.replace("&", "&&")[:200]


def _style_index(fmt: Format | None) -> int | None:
    """The cell style index XlsxWriter gives ``fmt`` in this workbook (registering the format,
    as writing a cell with it would)."""
    return None if fmt is None else int(fmt._get_xf_index())
