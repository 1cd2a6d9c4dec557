"""Page orientation, font size and column widths of a PDF's detail table, and cell text.

Computed once per PDF from the labels, the types and a sample of the rows, so that the pages of
every render chunk line up.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from app.i18n import human_formats, translate
from app.reports.rendering.base import Column, ColumnType, RenderContext

CELL_MAX_CHARS = 500
LAYOUT_SAMPLE = 1000  # rows that column widths are estimated from
LANDSCAPE_MIN_COLUMNS = 7  # wider tables are printed on landscape A4
SHORT_LABEL_EM = 7.0
LONGEST_WORD_EM = 24.0  # a column grows to fit a word up to this long
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Layout:
    landscape: bool
    widths: list[float]  # percent of the table width, one per column
    font_size_pt: float

    @property
    def rows_per_page(self) -> float:
        """About how many one-line data rows a page holds (an estimate, for progress only)."""
        row_mm = self.font_size_pt * 1.12 * _PT_TO_MM + _ROW_PADDING_MM
        return max(1.0, _PAGE_HEIGHT_MM[self.landscape] / row_mm - 2)  # less the header row


_PAGE_WIDTH_MM = {False: 210.0 - 22.0, True: 297.0 - 22.0}  # A4 less the side margins
_PAGE_HEIGHT_MM = {False: 297.0 - 30.0, True: 210.0 - 30.0}  # A4 less the top and bottom margins
_CELL_PADDING_MM = 2.6
_ROW_PADDING_MM = 0.8
_PT_TO_MM = 25.4 / 72
# Values of these types should never wrap; strings may (down to their longest label word).
_UNBREAKABLE_FLOOR = {
    ColumnType.BOOLEAN: 3,
    ColumnType.DATE: 10,
    ColumnType.DATETIME: 16,
    ColumnType.INTEGER: 3,
    ColumnType.NUMBER: 4,
    ColumnType.PERCENT: 5,
}


def plan_layout(
    columns: Sequence[Column], rows: Sequence[Sequence[Any]], context: RenderContext
) -> Layout:
    """Page orientation, font size and column widths, from the labels, the types and a sample
    of the rows (computed once, so that every chunk's pages line up).

    Dates, times, numbers and short codes get the width they need so they never wrap; long text
    columns share what is left and wrap. Widths are estimated in em from per-glyph advances.
    """
    tz = context.tz
    sample = rows[:LAYOUT_SAMPLE]
    natural: list[float] = []  # em each column would like
    minimum: list[float] = []  # em below which it should not go
    for c, column in enumerate(columns):
        label_word = max((_text_em(w) for w in column.label.split()), default=2.0) * 1.12  # bold
        label_full = _text_em(column.label) * 1.12
        if label_full <= SHORT_LABEL_EM:  # a short label ("Course code") stays on one line
            label_word = label_full
        if column.width is not None:
            natural.append(column.width * 0.55)
            minimum.append(column.width * 0.55)
            continue
        texts = [format_cell(row[c], column.type, tz, context.locale) for row in sample]
        ems = sorted(_text_em(t) for t in texts)
        typical = ems[int(len(ems) * 0.9)] if ems else 4.0
        longest = ems[-1] if ems else 4.0
        if column.type is ColumnType.STRING:
            # A cell only wraps between words (e-mails after "@" and "."), so the column is at
            # least as wide as its longest word; e-mails and short values want their whole width.
            word = max((_text_em(w) for t in texts for w in words(t)), default=2.0)
            word = min(word, LONGEST_WORD_EM)  # longer "words" (ids, junk) break anywhere
            emails = bool(texts) and all(is_email(t) for t in texts if t)
            cap = 30.0 if emails else 22.0
            want = max(min(longest if longest <= cap else typical, cap), label_word, word, 2.0)
            # Short values (codes, names, e-mails, departments: every value up to ~25
            # characters) stay on one line; long text (titles) takes what is left and wraps.
            floor = want if longest <= 13.0 or emails else max(label_word, word, min(want, 6.5))
            if emails:  # the glyph table is an estimate: room so an e-mail estimated to fit does
                want = floor = want * 1.06
        else:
            want = max(longest, label_word, 2.0)
            floor = want
        natural.append(want)
        minimum.append(floor)

    landscape = len(columns) >= LANDSCAPE_MIN_COLUMNS
    font_pt = 8.0 if len(columns) < 8 else 7.5 if len(columns) < 12 else 7.0
    if not landscape and _table_mm(natural, font_pt) > _PAGE_WIDTH_MM[False]:
        landscape = True
    available = _PAGE_WIDTH_MM[landscape]
    # A row that wraps takes two lines or more: a slightly smaller font that keeps rows on one
    # line prints about half the pages. Down to 6.5 pt for that, to 6 pt only when even the
    # narrowest widths do not fit.
    while font_pt > 6.5 and _table_mm(natural, font_pt) > available:
        font_pt -= 0.5
    while font_pt > 6.0 and _table_mm(minimum, font_pt) > available:
        font_pt -= 0.5

    em_mm = font_pt * _PT_TO_MM
    want_mm = [n * em_mm + _CELL_PADDING_MM for n in natural]
    min_mm = [m * em_mm + _CELL_PADDING_MM for m in minimum]
    if sum(want_mm) <= available:
        widths_mm = want_mm  # everything fits: the spare width is shared out proportionally
    elif sum(min_mm) >= available:
        widths_mm = min_mm  # too wide even at the minimum: scaled down below
    else:
        spare = available - sum(min_mm)
        stretch = [w - m for w, m in zip(want_mm, min_mm, strict=True)]
        total_stretch = sum(stretch) or 1.0
        widths_mm = [m + spare * s / total_stretch for m, s in zip(min_mm, stretch, strict=True)]
    total = sum(widths_mm)
    widths = [round(100 * w / total, 3) for w in widths_mm]
    return Layout(landscape=landscape, widths=widths, font_size_pt=font_pt)


def _table_mm(ems: Sequence[float], font_pt: float) -> float:
    return sum(n * font_pt * _PT_TO_MM + _CELL_PADDING_MM for n in ems)


# Approximate advances of DejaVu Sans Condensed, in em (close enough to size columns).
_GLYPH_EM: dict[str, float] = {
    **dict.fromkeys("0123456789", 0.573),
    **dict.fromkeys(" ", 0.286),
    **dict.fromkeys(".,:;'|!", 0.29),
    **dict.fromkeys("ijlft", 0.3),
    **dict.fromkeys("-()[]/r", 0.37),
    **dict.fromkeys("mwMW@%", 0.85),
    **dict.fromkeys("ABCDEFGHIJKLNOPQRSTUVXYZ", 0.64),
}


def _text_em(text: str) -> float:
    get = _GLYPH_EM.get
    return sum(get(ch, 0.53) for ch in text)


# -- cell text -----------------------------------------------------------------------------

ZERO_WIDTH_SPACE = "\u200b"
_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+$")
_EMAIL_BREAKS = re.compile(r"(?<=[@.])")


def is_email(text: str) -> bool:
    return bool(_EMAIL.match(text))


def words(text: str) -> list[str]:
    """The pieces a cell may wrap between: words at spaces, e-mails after "@" and "."."""
    if is_email(text):
        return [w for w in _EMAIL_BREAKS.split(text) if w]
    return text.split()


def wrap_points(text: str) -> str:
    """`text` with a zero-width space after each "@" and "." of an e-mail, where it may wrap
    (the table never breaks inside a word)."""
    return _EMAIL_BREAKS.sub(ZERO_WIDTH_SPACE, text) if is_email(text) else text


def format_cell(value: Any, column_type: ColumnType, tz: tzinfo, locale: str = "en") -> str:
    """The text a reader sees in the PDF for one value (not yet HTML-escaped), in the
    locale's formats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return translate(locale, "Yes") if value else translate(locale, "No")
    formats = human_formats(locale)
    if isinstance(value, datetime):
        moment: datetime = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return formats.datetime(moment.astimezone(tz))
    if isinstance(value, date):
        return formats.date(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return ""
        if column_type is ColumnType.PERCENT:
            return formats.percent(value)
        if isinstance(value, int):
            return formats.integer(value)
        return formats.decimal(value, 1 if round(value, 1) == value else 2)
    text = CONTROL_CHARS.sub(" ", str(value))
    if len(text) > CELL_MAX_CHARS:
        text = text[: CELL_MAX_CHARS - 1].rstrip() + "…"
    return text
