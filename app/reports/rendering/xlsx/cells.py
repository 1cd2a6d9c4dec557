"""The data rows as SpreadsheetML: each row one string, the cells XlsxWriter's constant-memory
mode writes for the same values (see the package docstring for why the writer does not go
through XlsxWriter's per-cell calls)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from xlsxwriter.utility import xl_col_to_name

from app.reports.rendering.base import Column, ColumnType, neutralise_formula

EXCEL_MAX_STRING = 32_767
# What text needs besides itself in a cell: XML's special characters, the control characters
# SpreadsheetML writes as _xHHHH_ (and a literal _xHHHH_, whose underscore is escaped), the two
# non-characters.
_NEEDS_ESCAPING = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_LITERAL_ESCAPE = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")
_EPOCH = datetime(1899, 12, 31)  # XlsxWriter's epoch of the 1900 date system
# A percent cell holds the fraction, rounded to the precision its format ("0.0%") shows: 57.1
# is stored as 0.571, not as 57.1 / 100 = 0.5710000000000001.
PERCENT_DIGITS = 3


def percent_fraction(value: float) -> float:
    """A percentage (0–100) as the fraction a "0.0%" cell holds."""
    return round(value / 100, PERCENT_DIGITS)


def fit_string(text: str) -> str:
    """Excel cells hold at most 32,767 characters (UTF-16 units); cut longer text with an ellipsis."""
    if len(text) <= EXCEL_MAX_STRING // 2:
        return text
    encoded = text.encode("utf-16-le")
    if len(encoded) // 2 <= EXCEL_MAX_STRING:
        return text
    cut = encoded[: (EXCEL_MAX_STRING - 1) * 2].decode("utf-16-le", errors="ignore")
    return cut + "…"


class CellWriter:
    """One data row as SpreadsheetML, as XlsxWriter's constant-memory mode writes it: ``<row
    r="n">`` with a ``<c>`` per non-empty cell (``r`` its reference, ``s`` its style when the
    column has a number format), text as an inline string, numbers as ``%.16G`` (percentages as
    their fraction, rounded to what "0.0%" shows: `percent_fraction`), booleans as
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
                    value = percent_fraction(value)
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
            number = float(value)
            if c in self._percents:
                number = percent_fraction(number)
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
        value = fit_string(value)
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
