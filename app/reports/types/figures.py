"""Numbers and cells as every report type computes and prints them (spec §5.1).

Averages ignore missing values and are rounded to 1 decimal (half up); rates are percentages
0–100 rounded to 1 decimal; an average, rate, minimum or maximum over an empty set is `None` (an
empty cell), while counts and sums over an empty set are 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app.common.time import as_utc
from app.i18n import current_formats


def round1(value: float | int | None) -> float | None:
    """1 decimal, half up (12.25 -> 12.3); None and NaN stay empty."""
    if value is None or value != value:
        return None
    return float(Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def rate(part: int | float, whole: int | float) -> float | None:
    """`part ÷ whole` as a percentage with 1 decimal; None when `whole` is 0."""
    if not whole:
        return None
    return round1(100.0 * part / whole)


def average(total: float, count: int) -> float | None:
    return round1(total / count) if count else None


# Scores and other averaged values are summed on the server as integers of this many
# millionths, so an average is one exact division (binary floating-point sums turn 60.35 into
# 60.349999…, which rounds down).
SCALE = 1_000_000


def scaled(expression: Any) -> dict[str, Any]:
    """`expression` in millionths, rounded to an integer; null when it is not a number (so
    `$sum` skips it and the `numeric` count leaves it out)."""
    return {
        "$cond": [
            {"$isNumber": expression},
            {"$round": [{"$multiply": [expression, SCALE]}, 0]},
            None,
        ]
    }


def numeric(expression: Any) -> dict[str, Any]:
    """`expression` when it is a number, null otherwise: `$min` / `$max` / `$avg` skip it (a
    legacy string score would otherwise sort above every number)."""
    return {"$cond": [{"$isNumber": expression}, expression, None]}


def is_numeric(expression: Any) -> dict[str, Any]:
    """1 when `expression` is a number, else 0 (for counting the values an average is over)."""
    return {"$cond": [{"$isNumber": expression}, 1, 0]}


def exact_average(scaled_total: Any, count: int, divisor: int = SCALE) -> float | None:
    """The mean of `count` values summed as integers (`scaled_total` ÷ `divisor` per unit),
    rounded half up to 1 decimal with exact arithmetic; None over an empty set."""
    if not count or scaled_total is None:
        return None
    mean = Decimal(round(scaled_total)) / (Decimal(count) * divisor)
    return float(mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


# Summary figures as the current locale (`app.i18n.use_locale`) writes them: "1,234" / "1.234".


def fmt_count(value: int) -> str:
    return current_formats().integer(value)


def fmt_number(value: float | None, suffix: str = "") -> str:
    return "—" if value is None else current_formats().decimal(value, 1) + suffix


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else current_formats().percent(value)


def utc(value: Any) -> datetime | None:
    """Aware UTC datetime from whatever MongoDB returned (None stays None)."""
    if type(value) is datetime and value.tzinfo is None:  # the common case, made cheap
        return value.replace(tzinfo=UTC)
    return as_utc(value) if isinstance(value, datetime) else None


def naive_utc(value: Any) -> datetime | None:
    """A naive UTC datetime (what the renderers take) from whatever MongoDB returned; cheap
    for the common case, a naive datetime decoded with ``tz_aware=False``."""
    if value.__class__ is datetime:
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)
    return as_utc(value).replace(tzinfo=None) if isinstance(value, datetime) else None


def number(value: Any) -> float | None:
    """A numeric cell, or None for missing / non-numeric values."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class Mean:
    """A running mean of numeric values, summed exactly (each float as the decimal it prints
    as), rounded half up to 1 decimal; non-numbers are ignored."""

    __slots__ = ("count", "total")

    def __init__(self) -> None:
        self.total = Decimal(0)
        self.count = 0

    def add(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return
        self.total += Decimal(repr(value))
        self.count += 1

    def value(self) -> float | None:
        if not self.count:
            return None
        mean = self.total / self.count
        return float(mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
