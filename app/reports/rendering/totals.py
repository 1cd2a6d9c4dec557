"""A report's totals row: what each column's total is (`Total`, keyed by column key, so it
still applies when a file shows a subset of the columns), the row's values once the rows are
read (`TotalsRow`), and the spreadsheet formulas that recompute them over the rows a filter
leaves visible.

One definition per figure: a count's total is the sum of the counts; a rate's total is the
rate of the totals (completed ÷ (enrolled − withdrawn) over every row), never an average of
the rows' rates; a per-record value's total is the mean over the records that have one. A
column without a meaningful total (a name, a date, an average whose weights the rows do not
carry) stays empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from app.i18n import N_, translate
from app.reports.rendering.base import Column, ColumnType

TOTAL_LABEL = N_("Total")


class TotalKind(StrEnum):
    SUM = "sum"  # the values added up (counts, minutes)
    MEAN = "mean"  # the mean of the rows that have a value (one record per row)
    MIN = "min"  # the lowest value
    MAX = "max"  # the highest value
    COUNT = "count"  # the rows with a value (one record per row: the records)
    RATE = "rate"  # part ÷ (whole − less) of the totals, as a percentage


# Excel's SUBTOTAL function numbers that leave out the rows a filter hides.
_SUBTOTAL = {
    TotalKind.SUM: 109,
    TotalKind.MEAN: 101,
    TotalKind.MIN: 105,
    TotalKind.MAX: 104,
    TotalKind.COUNT: 103,
}


@dataclass(frozen=True)
class Total:
    """How one column's total is computed. A rate names the columns whose totals it divides:
    `part` ÷ (sum of `whole` − sum of `less`)."""

    kind: TotalKind
    part: str | None = None
    whole: tuple[str, ...] = ()
    less: tuple[str, ...] = ()

    @property
    def inputs(self) -> tuple[str, ...]:
        """The columns a rate is computed from (their sums)."""
        return ((self.part,) if self.part else ()) + self.whole + self.less

    def shown_as(self, column: Column) -> ColumnType:
        """How the total cell prints: a count of records is a whole number whatever the
        column holds (the statuses it counts)."""
        return ColumnType.INTEGER if self.kind is TotalKind.COUNT else column.type


SUM = Total(TotalKind.SUM)
MEAN = Total(TotalKind.MEAN)
MIN = Total(TotalKind.MIN)
MAX = Total(TotalKind.MAX)
COUNT = Total(TotalKind.COUNT)


def rate_of(part: str, whole: str, *less: str) -> Total:
    """A rate column's total: `part` ÷ (`whole` − each of `less`), over the totals."""
    return Total(TotalKind.RATE, part=part, whole=(whole,), less=tuple(less))


TotalsValues = dict[str, int | float | None]


@dataclass(frozen=True)
class TotalsRow:
    """The totals row of a file for people (PDF, Excel): the label ("Total", translated), what
    each column's total is, and, once every row is read, the values (by column key)."""

    label: str
    totals: Mapping[str, Total]
    values: Mapping[str, int | float | None] = field(default_factory=dict)

    def cells(self, columns: Sequence[Column]) -> list[tuple[Any, ColumnType]]:
        """The row's cells in the file's column order, each with the type it prints as: the
        label in the first column without a total of its own, the totals, empty cells for the
        rest."""
        out: list[tuple[Any, ColumnType]] = []
        labelled = False
        for column in columns:
            total = self.totals.get(column.key)
            if total is not None:
                out.append((self.values.get(column.key), total.shown_as(column)))
            elif not labelled:
                out.append((self.label, ColumnType.STRING))
                labelled = True
            else:
                out.append((None, column.type))
        return out


def excel_formula(
    total: Total,
    column: Column,
    ranges: Sequence[str],
    total_cells: Mapping[str, str],
) -> str | None:
    """The formula of a column's total in a spreadsheet: `SUBTOTAL` over the data `ranges`
    (so the total follows the autofilter), a rate as the rate of the total cells
    (`total_cells`: column key -> the cell holding its total); None when a rate's inputs are
    not columns of the sheet (the total is then written as a value). Percent cells hold
    fractions, rounded as the cells of the rows are (1 decimal of a percentage)."""
    refs = ",".join(ranges)
    if total.kind is TotalKind.RATE:
        if not all(key in total_cells for key in total.inputs):
            return None
        assert total.part is not None
        whole = "+".join(total_cells[k] for k in total.whole)
        less = "".join(f"-{total_cells[k]}" for k in total.less)
        denominator = f"({whole}{less})"
        ratio = f"{total_cells[total.part]}/{denominator}"
        value = (
            f"ROUND({ratio},3)" if column.type is ColumnType.PERCENT else f"ROUND({ratio}*100,1)"
        )
        return f'IF({denominator}=0,"",{value})'
    number = _SUBTOTAL[total.kind]
    subtotal = f"SUBTOTAL({number},{refs})"
    if total.kind is TotalKind.MEAN:
        digits = 3 if column.type is ColumnType.PERCENT else 1
        return f'IF(SUBTOTAL(102,{refs})=0,"",ROUND({subtotal},{digits}))'
    if total.kind in (TotalKind.MIN, TotalKind.MAX):
        return f'IF(SUBTOTAL(102,{refs})=0,"",{subtotal})'
    return subtotal


def totals_row(totals: Mapping[str, Total], locale: str) -> TotalsRow | None:
    """The totals row a file in `locale` ends with; None for a report without totals."""
    return TotalsRow(translate(locale, TOTAL_LABEL), totals) if totals else None


def with_values(row: TotalsRow | None, values: TotalsValues | None) -> TotalsRow | None:
    """The totals row with its figures, once every row is read."""
    if row is None or values is None:
        return row
    return replace(row, values=values)


__all__ = [
    "COUNT",
    "MAX",
    "MEAN",
    "MIN",
    "SUM",
    "TOTAL_LABEL",
    "Total",
    "TotalKind",
    "TotalsRow",
    "TotalsValues",
    "excel_formula",
    "rate_of",
    "totals_row",
    "with_values",
]
