"""The workbook's "Parameters" sheet: the report's title, when and for whom it was made, its
parameters, its summary figures (numbers a spreadsheet can add up) and their definitions, in the
report's locale."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from app.i18n import N_, human_formats, translate
from app.reports.rendering.base import (
    ColumnType,
    Figure,
    RenderContext,
    RenderError,
    neutralise_formula,
)
from app.reports.rendering.xlsx.cells import fit_string, percent_fraction

PARAMETERS_SHEET_NAME = N_("Parameters")

# The summary figures' number formats on the Parameters sheet, by the figure's type.
_FIGURE_FORMATS: dict[ColumnType, str] = {
    ColumnType.INTEGER: "#,##0",
    ColumnType.NUMBER: "#,##0.0",
    ColumnType.PERCENT: "0.0%",
}


def write_parameters_sheet(
    workbook: Workbook,
    context: RenderContext,
    summary: list[Figure],
    *,
    rows_written: int,
    sheet_names: list[str],
    print_setup: Callable[[Worksheet], None],
) -> None:
    """Adds the sheet to `workbook`; `print_setup` gives it the data sheets' page setup."""
    ctx = context
    wb = workbook
    locale = ctx.locale

    def t(message: str) -> str:
        return translate(locale, message)

    sheet = wb.add_worksheet(t(PARAMETERS_SHEET_NAME))
    title = wb.add_format({"bold": True, "font_size": 14})
    section = wb.add_format({"bold": True, "font_size": 11, "bottom": 1})
    label = wb.add_format({"bold": True, "valign": "top"})
    text = wb.add_format({"text_wrap": True, "valign": "top"})
    # Figures are numbers (a spreadsheet adds them up), shown as the summary prints them,
    # on the left like the text beside them.
    numbers = {
        kind: wb.add_format({"num_format": fmt, "align": "left", "valign": "top"})
        for kind, fmt in _FIGURE_FORMATS.items()
    }
    # The label column fits the longest label (German ones run long), within reason.
    names = [
        *(name for name, _v in ctx.parameters),
        *(f.label for f in summary),
        *(name for name, _v in ctx.definitions),
    ]
    widths = (min(max([28, *(int(len(n) * 1.1) + 2 for n in names)]), 45), 70)
    for c, width in enumerate(widths):
        sheet.set_column(c, c, width)
    print_setup(sheet)

    row = 0

    def put(values: list[tuple[Any, Format | None]]) -> None:
        nonlocal row
        # Spreadsheets do not grow a row for wrapped text on their own: a long definition
        # gets the height of the lines it wraps into.
        lines = max(
            (_wrapped_lines(str(v), widths[c]) for c, (v, _) in enumerate(values) if c < 2),
            default=1,
        )
        if lines > 1:
            sheet.set_row(row, _LINE_POINTS * lines)
        for c, (value, fmt) in enumerate(values):
            if isinstance(value, int | float) and not isinstance(value, bool):
                rc = sheet.write_number(row, c, value, fmt)
            else:
                rc = sheet.write_string(row, c, fit_string(neutralise_formula(str(value))), fmt)
            if rc != 0:
                raise RenderError(f"XlsxWriter refused a Parameters cell (return code {rc})")
        row += 1

    def put_figure(figure: Figure) -> None:
        value, fmt = figure.value, numbers.get(figure.type)
        if fmt is None or not _finite_number(value):  # words, or an empty figure ("—")
            put([(figure.label, label), (figure.text, text)])
            return
        assert isinstance(value, int | float)
        number = percent_fraction(value) if figure.type is ColumnType.PERCENT else value
        put([(figure.label, label), (number, fmt)])

    local = ctx.generated_at_local
    generated = f"{human_formats(locale).datetime(local)} {local.strftime('%Z')}".strip()
    put([(ctx.title, title)])
    row += 1
    put([(t("Report type"), label), (ctx.type_name, text)])
    put([(t("Timezone"), label), (ctx.timezone, text)])
    if not generated.endswith(ctx.timezone):  # "… CET (Europe/Berlin)", not "… UTC (UTC)"
        generated = f"{generated} ({ctx.timezone})"
    put([(t("Generated at"), label), (generated, text)])
    if ctx.requested_by:
        put([(t("Requested by"), label), (ctx.requested_by, text)])
    put([(t("Rows"), label), (rows_written, numbers[ColumnType.INTEGER])])
    if len(sheet_names) > 1:
        put([(t("Data sheets"), label), (", ".join(sheet_names), text)])
    row += 1
    put([(t("Parameters"), section), ("", section)])
    if ctx.parameters:
        for name, value in ctx.parameters:
            fmt = numbers[ColumnType.INTEGER] if isinstance(value, int) else text
            put([(name, label), (value, fmt)])
    else:
        put([(t("(none)"), text)])
    if summary:
        row += 1
        put([(t("Summary"), section), ("", section)])
        for figure in summary:
            put_figure(figure)
    if ctx.definitions:
        row += 1
        put([(t("Definitions"), section), ("", section)])
        for name, value in ctx.definitions:
            put([(name, label), (value, text)])


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_LINE_POINTS = 15  # a line of 11 pt text
_CHARS_PER_WIDTH = 1.2  # characters of ordinary text a unit of column width holds, about


def _wrapped_lines(text: str, width: int) -> int:
    """The lines `text` wraps into in a column `width` characters wide (an estimate that errs
    on the side of room)."""
    per_line = max(1, int(width * _CHARS_PER_WIDTH))
    return sum(max(1, math.ceil(len(part) / per_line)) for part in text.split("\n"))
