"""The totals of a report's rows, computed in the same pass as its summary and in constant
memory (a running sum, mean, count, lowest and highest per column): the figures of the totals
row of PDF and Excel and of a preview's `totals`. A rate's total is the rate of the totals,
with the same `rate` as every row and summary (`figures.rate`); means with `figures.Mean`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from app.reports.reading.query import Row
from app.reports.rendering.base import Column
from app.reports.rendering.totals import Total, TotalKind, TotalsValues
from app.reports.types.figures import Mean, rate


def _number(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return value


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
        summed = {k for key, t in self.totals.items() for k in t.inputs}
        summed |= {key for key, t in self.totals.items() if t.kind is TotalKind.SUM}
        self._sums = {key: (positions[key], Decimal(0)) for key in sorted(summed)}
        self._means = {
            key: (positions[key], Mean())
            for key, t in self.totals.items()
            if t.kind is TotalKind.MEAN
        }
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
        for key, (at, total) in self._sums.items():
            # Each value as the decimal it prints as: sums of 0.1 stay 0.1 apart.
            total += sum(
                (Decimal(repr(v)) for row in batch if (v := _number(row[at])) is not None),
                Decimal(0),
            )
            self._sums[key] = (at, total)
        for at, mean in self._means.values():
            for row in batch:
                mean.add(row[at])
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

    def _sum(self, key: str) -> int | float:
        total = self._sums[key][1]
        return int(total) if total == total.to_integral_value() else float(total)

    def result(self) -> TotalsValues | None:
        if not self.totals:
            return None
        out: TotalsValues = {}
        for key, total in self.totals.items():
            kind = total.kind
            if kind is TotalKind.SUM:
                out[key] = self._sum(key)
            elif kind is TotalKind.MEAN:
                out[key] = self._means[key][1].value()
            elif kind is TotalKind.COUNT:
                out[key] = int(self._counts[key][1])
            elif kind is TotalKind.RATE:
                assert total.part is not None
                whole = sum(self._sum(k) for k in total.whole) - sum(
                    self._sum(k) for k in total.less
                )
                out[key] = rate(self._sum(total.part), whole)
            else:
                out[key] = self._extreme_values[key]
        return out


__all__ = ["TotalsAccumulator"]
