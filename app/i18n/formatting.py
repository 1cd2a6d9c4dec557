"""Numbers, percents and dates as people read them in a locale (PDF, e-mail, summaries), from
Babel's CLDR data: the locale's decimal and grouping symbols, its percent pattern ("49.6%",
"49,6 %") and the date and time formats its `LocaleSpec` names.

Millions of PDF cells go through here, so a locale whose patterns are the common ones
(groups of three, "-" as minus sign, dates of day / month / year digits) is formatted with
Python's own formatting and Babel's symbols (one `str.translate` a number, `strftime` a date):
the same text Babel gives for a value already rounded to the shown precision, ~20× faster.
Other locales go through Babel itself. Values are rounded as Python rounds floats.
"""

from __future__ import annotations

import copy
import re
from datetime import date, datetime
from functools import cache

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import NumberPattern, format_decimal

from app.i18n.catalogs import current_locale
from app.i18n.locales import locale_spec

_FIELD = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*")
_STRFTIME = {
    "yyyy": "%Y",
    "y": "%Y",
    "yy": "%y",
    "MM": "%m",
    "dd": "%d",
    "HH": "%H",
    "mm": "%M",
    "ss": "%S",
}


def _strftime(pattern: str) -> str | None:
    """A CLDR date pattern as a `strftime` format, or None when it has fields `strftime`
    cannot print the same way (names of months, unpadded numbers, eras…)."""
    out: list[str] = []
    position = 0
    for match in _FIELD.finditer(pattern):
        out.append(pattern[position : match.start()].replace("%", "%%"))
        token = match.group(0)
        if token.startswith("'"):
            literal = token[1:-1].replace("''", "'") if len(token) > 2 else "'"
            out.append(literal.replace("%", "%%"))
        elif token in _STRFTIME:
            out.append(_STRFTIME[token])
        else:
            return None
        position = match.end()
    out.append(pattern[position:].replace("%", "%%"))
    return "".join(out)


class HumanFormats:
    """One locale's formats (get them with `human_formats(locale)`)."""

    def __init__(self, locale: str) -> None:
        spec = locale_spec(locale)
        self.locale = locale
        self._babel = Locale.parse(locale)
        symbols = self._babel.number_symbols["latn"]
        self._decimal_pattern: NumberPattern = self._babel.decimal_formats[None]
        self._percent_pattern: NumberPattern = self._babel.percent_formats[None]
        self._fast_numbers = (
            self._decimal_pattern.grouping == (3, 3)
            and self._percent_pattern.grouping == (3, 3)
            and symbols["minusSign"] == "-"
        )
        self._swap = str.maketrans({",": symbols["group"], ".": symbols["decimal"]})
        sign = symbols["percentSign"]
        self._percent_prefix = self._percent_pattern.prefix[0].replace("%", sign)
        self._percent_suffix = self._percent_pattern.suffix[0].replace("%", sign)
        self._date_format = spec.date_format
        self._time_format = spec.time_format
        date_pattern = self._pattern(self._babel.date_formats, spec.date_format)
        time_pattern = self._pattern(self._babel.time_formats, spec.time_format)
        join = spec.datetime_join or str(self._babel.datetime_formats["medium"])
        self._join = join
        self._date_strftime = _strftime(date_pattern) if date_pattern else None
        time_strftime = _strftime(time_pattern) if time_pattern else None
        self._datetime_strftime = (
            join.replace("{1}", self._date_strftime).replace("{0}", time_strftime)
            if self._date_strftime and time_strftime and "%" not in join
            else None
        )

    @staticmethod
    def _pattern(named: object, fmt: str) -> str | None:
        """The CLDR pattern of a format given by name ("medium") or as a pattern."""
        if fmt in ("full", "long", "medium", "short"):
            pattern = getattr(named[fmt], "pattern", None)  # type: ignore[index]
            return str(pattern) if pattern is not None else None
        return fmt

    # -- numbers ------------------------------------------------------------------------------

    def integer(self, value: int) -> str:
        """`1,234` / `1.234`."""
        if self._fast_numbers:
            return f"{value:,}".translate(self._swap)
        return self._apply(self._decimal_pattern, value, 0)

    def decimal(self, value: float, digits: int = 1) -> str:
        """`value` with exactly `digits` decimals: `1,234.5` / `1.234,5`."""
        if self._fast_numbers:
            return f"{value:,.{digits}f}".translate(self._swap)
        return self._apply(self._decimal_pattern, value, digits)

    def number(self, value: float) -> str:
        """A figure as a sentence says it: the decimals it has, up to 3, none added (`50`,
        `72.5` / `72,5`, `1,234` / `1.234`)."""
        return str(format_decimal(value, locale=self._babel))

    def percent(self, value: float, digits: int = 1) -> str:
        """A percentage given as 0–100 (85.3 means 85.3 %): `85.3%` / `85,3 %`."""
        if self._fast_numbers:
            number = f"{abs(value):,.{digits}f}".translate(self._swap)
            sign = "-" if value < 0 and number.strip("0,.") else ""
            return f"{sign}{self._percent_prefix}{number}{self._percent_suffix}"
        return self._apply(self._percent_pattern, value / 100, digits)

    def _apply(self, pattern: NumberPattern, value: float, digits: int) -> str:
        fixed = copy.copy(pattern)
        fixed.frac_prec = (digits, digits)
        return str(fixed.apply(value, self._babel))

    # -- dates --------------------------------------------------------------------------------

    def date(self, value: date) -> str:
        """A calendar day: `2026-07-01` / `01.07.2026`."""
        if self._date_strftime is not None:
            return value.strftime(self._date_strftime)
        return str(format_date(value, self._date_format, locale=self._babel))

    def datetime(self, value: datetime) -> str:
        """A wall-clock time as it stands (convert it to the report's timezone first):
        `2026-07-01 14:30` / `01.07.2026, 14:30`."""
        if self._datetime_strftime is not None:
            return value.strftime(self._datetime_strftime)
        day = self.date(value.date())
        clock = str(format_time(value.replace(tzinfo=None), self._time_format, locale=self._babel))
        return self._join.replace("{1}", day).replace("{0}", clock)


@cache
def human_formats(locale: str) -> HumanFormats:
    return HumanFormats(locale)


def current_formats() -> HumanFormats:
    """The formats of the current locale (`use_locale`)."""
    return human_formats(current_locale())
