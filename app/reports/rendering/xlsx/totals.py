"""The rows of a workbook that are not data: the totals row below the data (`SUBTOTAL`
formulas over the data range with their values cached, so the totals follow the autofilter
and read right before any recalculation) and a department tree's outline levels."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from xlsxwriter.utility import xl_col_to_name

from app.reports.rendering.base import Column, ColumnType
from app.reports.rendering.totals import TotalsRow, excel_formula
from app.reports.rendering.xlsx.cells import percent_fraction

# Excel shows at most 7 outline levels; deeper rows stay on the 7th.
MAX_OUTLINE_LEVEL = 7
_ROW_START = re.compile(r'^<row r="(\d+)"')


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _quoted_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def totals_row_xml(
    row: TotalsRow,
    columns: Sequence[Column],
    r: int,
    sheets: Sequence[tuple[str, int]],
    styles: Sequence[int | None],
) -> str:
    """The totals row `r` of the last data sheet: the label, each total a formula over the data
    rows of every data sheet (`sheets`: (name, last row) each, the last one this sheet) with its
    value cached, empty cells for the rest. `styles`: each column's bold style."""
    ranges_of: dict[int, list[str]] = {}
    for c in range(len(columns)):
        col = xl_col_to_name(c)
        ranges: list[str] = []
        for n, (name, last) in enumerate(sheets):
            if last < 2:
                continue  # a sheet without data rows
            span = f"{col}2:{col}{last}"
            ranges.append(span if n == len(sheets) - 1 else f"{_quoted_sheet(name)}!{span}")
        ranges_of[c] = ranges
    total_cells = {column.key: f"{xl_col_to_name(c)}{r}" for c, column in enumerate(columns)}
    cells: list[str] = []
    for c, (value, shown) in enumerate(row.cells(columns)):
        ref = f"{xl_col_to_name(c)}{r}"
        style = f' s="{styles[c]}"' if styles[c] is not None else ""
        total = row.totals.get(columns[c].key)
        if total is None:
            if isinstance(value, str):
                text = _escape(value)
                cells.append(f'<c r="{ref}"{style} t="inlineStr"><is><t>{text}</t></is></c>')
            elif style:
                cells.append(f'<c r="{ref}"{style}/>')
            continue
        formula = excel_formula(total, columns[c], ranges_of[c], total_cells)
        if not ranges_of[c] and formula is not None and "SUBTOTAL" in formula:
            formula = None  # no data rows to total
        cached = _cached(value, shown)
        if formula is None:
            if cached is None:
                cells.append(f'<c r="{ref}"{style}/>')
            else:
                cells.append(f'<c r="{ref}"{style}><v>{cached}</v></c>')
        elif cached is None:
            cells.append(f'<c r="{ref}"{style} t="str"><f>{_escape(formula)}</f><v></v></c>')
        else:
            cells.append(f'<c r="{ref}"{style}><f>{_escape(formula)}</f><v>{cached}</v></c>')
    return f'<row r="{r}">{"".join(cells)}</row>'


def _cached(value: Any, shown: ColumnType) -> str | None:
    """A total's value as the cell caches it (a percentage as its fraction); None: empty."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    number = percent_fraction(value) if shown is ColumnType.PERCENT else value
    return f"{number:.16G}"


def outlined(xml: str, level: Any) -> str:
    """A data row's XML in the outline level of its tree `level` (0: a top-level row, no
    outline); collapsing a row hides its subtree, which follows it."""
    if not isinstance(level, int) or isinstance(level, bool) or level <= 0:
        return xml
    depth = min(level, MAX_OUTLINE_LEVEL)
    return _ROW_START.sub(lambda m: f'<row r="{m.group(1)}" outlineLevel="{depth}"', xml, count=1)


__all__ = ["MAX_OUTLINE_LEVEL", "outlined", "totals_row_xml"]
