"""The totals of a report's rows, computed in the same pass as its summary and in constant
memory (a running sum, mean, count, lowest and highest per column): the figures of the totals
row of PDF and Excel and of a preview's `totals`. A rate's total is the rate of the totals,
with the same `rate` as every row and summary (`figures.rate`); a mean is one exact division
of a sum kept in millionths (`figures.exact_average`, as the server's averages)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

from app.reports.reading.query import Row
from app.reports.rendering.base import Column
from app.reports.rendering.totals import Total, TotalKind, TotalsValues
from app.reports.types.figures import SCALE, exact_average, rate


def _number(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


class _Sum:
    """A running sum and count of a column's numbers: whole numbers exactly, other numbers in
    millionths (`figures.SCALE`, as the server sums scores), so 0.1 + 0.2 is 0.3 and a mean is
    one exact division (`figures.exact_average`)."""

    __slots__ = ("at", "count", "millionths", "whole")

    def __init__(self, at: int) -> None:
        self.at = at
        self.whole = 0
        self.millionths = 0
        self.count = 0

    def add(self, batch: Sequence[Row]) -> None:
        at = self.at
        values = [row[at] for row in batch]
        whole = [v for v in values if type(v) is int]
        floats = [v * SCALE for v in values if type(v) is float and v - v == 0]  # finite
        self.whole += sum(whole)
        self.millionths += sum(map(round, floats))
        self.count += len(whole) + len(floats)
        if len(whole) + len(floats) < len(values):  # empty cells, or numbers of other types
            for v in values:
                if type(v) not in (int, float) and (number := _number(v)) is not None:
                    self.millionths += round(number * SCALE)
                    self.count += 1

    def total(self) -> int | float:
        if not self.millionths:
            return self.whole
        value = Decimal(self.whole) + Decimal(self.millionths) / SCALE
        return int(value) if value == value.to_integral_value() else float(value)

    def mean(self) -> float | None:
        return exact_average(self.whole * SCALE + self.millionths, self.count)


class TotalsAccumulator:
    """Adds up each batch of raw rows (every column, codes) as they stream by; `result()` is
    the totals by column key (None when the report has no totals). Keyed by column key: a
    total (or a rate's input) whose column the run does not have is left out."""

    def __init__(self, columns: Sequence[Column], totals: Mapping[str, Total]) -> None:
        positions = {c.key: i for i, c in enumerate(columns)}
        self.totals = {
            key: total
            for key, total in totals.items()
            if key in positions and all(k in positions for k in total.inputs)
        }
        summed = {k for t in self.totals.values() for k in t.inputs}
        summed |= {
            key for key, t in self.totals.items() if t.kind in (TotalKind.SUM, TotalKind.MEAN)
        }
        self._sums = {key: _Sum(positions[key]) for key in sorted(summed)}
        self._counts = {
            key: [positions[key], 0] for key, t in self.totals.items() if t.kind is TotalKind.COUNT
        }
        self._extremes: dict[str, tuple[int, TotalKind]] = {
            key: (positions[key], t.kind)
            for key, t in self.totals.items()
            if t.kind in (TotalKind.MIN, TotalKind.MAX)
        }
        self._extreme_values: dict[str, int | float | None] = dict.fromkeys(self._extremes)

    @property
    def active(self) -> bool:
        return bool(self.totals)

    def add(self, batch: Sequence[Row]) -> None:
        for running in self._sums.values():
            running.add(batch)
        for counter in self._counts.values():
            at = counter[0]
            counter[1] += sum(1 for row in batch if row[at] is not None)
        for key, (at, kind) in self._extremes.items():
            values = [v for row in batch if (v := _number(row[at])) is not None]
            if not values:
                continue
            best = self._extreme_values[key]
            pick = min if kind is TotalKind.MIN else max
            self._extreme_values[key] = pick(values) if best is None else pick(best, *values)

    def result(self) -> TotalsValues | None:
        if not self.totals:
            return None
        out: TotalsValues = {}
        for key, total in self.totals.items():
            kind = total.kind
            if kind is TotalKind.SUM:
                out[key] = self._sums[key].total()
            elif kind is TotalKind.MEAN:
                out[key] = self._sums[key].mean()
            elif kind is TotalKind.COUNT:
                out[key] = int(self._counts[key][1])
            elif kind is TotalKind.RATE:
                assert total.part is not None
                whole = sum(self._sums[k].total() for k in total.whole) - sum(
                    self._sums[k].total() for k in total.less
                )
                out[key] = rate(self._sums[total.part].total(), whole)
            else:
                out[key] = self._extreme_values[key]
        return out


__all__ = ["TotalsAccumulator"]
