"""Which charts a report type draws and what feeds them: a `ChartDefinition` names the columns
whose values it aggregates, and a run's `Charting` is fed every batch of rows in the same pass
as the summary (no second read). It keeps aggregated series only — counters per category and
series, never rows — and turns them into `ChartSpec`s (labels, never codes) once the rows are
done.

How a chart's value is made (`Measure`):
- `COUNT`: the rows of a category (and series): enrollments per status, per department and
  compliance state;
- `SUM`: a column added up: events per period and event type;
- `ROW`: the value of the category's row, when the rows are aggregates already (one row per
  department or course): its completion rate, its pass rate;
- `RATE`: the share of rows whose flag column is true among those where it is known (true ÷
  (true + false) × 100): the pass rate of each quiz, as the summary's pass rate is defined;
- `BANDS`: the rows counted by score band of ten points (0–9, …, 90–100).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from app.i18n import N_, human_formats, translate
from app.lookups import validation
from app.reports.reading.query import Row
from app.reports.rendering.base import Column, ColumnType, LabelledCode
from app.reports.rendering.charts import (
    MAX_CATEGORIES,
    ChartKind,
    ChartSeries,
    ChartSpec,
    Value,
)
from app.reports.types.figures import rate

_NONE = N_("Not set")
BAND_WIDTH = 10
_BANDS = 10  # 0–9 … 90–100


class Measure(StrEnum):
    COUNT = "count"
    SUM = "sum"
    ROW = "row"
    RATE = "rate"
    BANDS = "bands"


@dataclass(frozen=True)
class ChartDefinition:
    """One chart of a report type (`ReportDefinition.charts`). Texts are `N_` constants,
    translated where shown."""

    key: str
    title: str
    description: str
    kind: ChartKind
    measure: Measure
    category: str  # the column whose values are the bars (or, for BANDS, the scores banded)
    value_title: str
    value: str | None = None  # the column summed (SUM), read (ROW) or tested (RATE)
    series: str | None = None  # the column whose values split each bar (stacked)
    category_title: str | None = None  # default: the category column's label
    # The parameters that select the run shapes this chart belongs to (None: every shape),
    # e.g. {"groupBy": "none"}; the metadata API states them.
    when: dict[str, Any] | None = None
    # The category axis's title for the resolved parameters (a period's unit).
    category_title_for: Callable[[Any], str] | None = field(default=None, compare=False)

    def applies(self, resolved: Any) -> bool:
        if self.when is None:
            return True
        return all(_plain(getattr(resolved, _snake(k), None)) == v for k, v in self.when.items())


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)  # an enum's value


class _Series:
    """The aggregated series of one chart in a run."""

    def __init__(
        self,
        definition: ChartDefinition,
        resolved: Any,
        columns: Sequence[Column],
        cells: Mapping[str, Callable[[Any], Any]],
    ) -> None:
        self.definition = definition
        self.resolved = resolved
        # How people read a category (learning-activity's first period, clipped to the range).
        self.shown = cells.get(definition.category)
        positions = {c.key: i for i, c in enumerate(columns)}
        self.columns = {c.key: c for c in columns}
        self.category = positions[definition.category]
        self.value = positions[definition.value] if definition.value else None
        self.series = positions[definition.series] if definition.series else None
        # (category, series) -> the value so far; [true, known] for RATE. Insertion order is
        # the report's order.
        self.tally: dict[tuple[Any, Any], Any] = {}
        self.labels: dict[Any, str] = {}  # a LabelledCode category's label, by code

    def add(self, batch: Sequence[Row]) -> None:
        measure = self.definition.measure
        tally, c, v, s = self.tally, self.category, self.value, self.series
        for row in batch:
            category = row[c]
            if measure is Measure.BANDS:
                category = _band(category)
                if category is None:
                    continue
            elif isinstance(category, LabelledCode):
                self.labels.setdefault(str(category), category.label)
                category = str(category)
            key = (category, row[s] if s is not None else None)
            if measure is Measure.COUNT or measure is Measure.BANDS:
                tally[key] = tally.get(key, 0) + 1
            elif measure is Measure.SUM:
                assert v is not None
                tally[key] = tally.get(key, 0) + (row[v] or 0)
            elif measure is Measure.ROW:
                assert v is not None
                tally[key] = row[v]
            else:  # RATE
                assert v is not None
                flag = row[v]
                if flag is None:
                    tally.setdefault(key, [0, 0])
                    continue
                counts = tally.setdefault(key, [0, 0])
                counts[0] += 1 if flag else 0
                counts[1] += 1

    def spec(self, locale: str) -> ChartSpec:
        d = self.definition
        category_column = self.columns[d.category]
        categories = _ordered(
            [k[0] for k in self.tally],
            category_column,
            bands=d.measure is Measure.BANDS,
        )
        series_keys = (
            _ordered([k[1] for k in self.tally], self.columns[d.series], bands=False)
            if d.series
            else [None]
        )
        total = len(categories)
        categories = categories[:MAX_CATEGORIES]
        label = self._labeller(category_column, locale, bands=d.measure is Measure.BANDS)
        series_label = self._labeller(self.columns[d.series], locale) if d.series else None
        series = tuple(
            ChartSeries(
                series_label(s) if series_label else "",
                tuple(self._value(c, s) for c in categories),
            )
            for s in series_keys
        )
        if d.category_title_for is not None:
            category_title = translate(locale, d.category_title_for(self.resolved))
        else:
            category_title = translate(locale, d.category_title or category_column.label)
        note = ""
        if total > len(categories):
            note = translate(locale, "The first {shown} of {total}, in the report's order").format(
                shown=len(categories), total=total
            )
        return ChartSpec(
            key=d.key,
            title=translate(locale, d.title),
            description=translate(locale, d.description),
            kind=d.kind,
            category_title=category_title,
            value_title=translate(locale, d.value_title),
            value_type=(
                ColumnType.PERCENT
                if d.measure in (Measure.RATE, Measure.ROW)
                else ColumnType.INTEGER
            ),
            categories=_unique([label(c) for c in categories]),
            series=series,
            series_title=translate(locale, self.columns[d.series].label) if d.series else "",
            note=note,
        )

    def _value(self, category: Any, series: Any) -> Value:
        found = self.tally.get((category, series))
        measure = self.definition.measure
        if measure is Measure.RATE:
            return rate(found[0], found[1]) if found else None
        if measure is Measure.ROW:
            return found if isinstance(found, int | float) else None
        return found if isinstance(found, int | float) else 0

    def _labeller(
        self, column: Column, locale: str, *, bands: bool = False
    ) -> Callable[[Any], str]:
        if bands:
            return _band_label
        names = validation.labels(column.lookup, locale) if column.lookup else {}
        formats = human_formats(locale)
        none = translate(locale, _NONE)

        shown = self.shown if column.key == self.definition.category else None

        def label(value: Any) -> str:
            if shown is not None:
                value = shown(value)
            if value is None or value == "":
                return none
            if isinstance(value, str):
                return self.labels.get(value) or names.get(value, value)
            if isinstance(value, date):
                return formats.date(value)
            return str(value)

        return label


def _band(score: Any) -> int | None:
    """The band a score falls in (0 for 0–9 … 9 for 90–100); None for no score."""
    if not isinstance(score, int | float) or isinstance(score, bool) or score != score:
        return None
    return min(max(int(score // BAND_WIDTH), 0), _BANDS - 1)


def _band_label(band: Any) -> str:
    low = int(band) * BAND_WIDTH
    high = low + BAND_WIDTH - 1 if band < _BANDS - 1 else low + BAND_WIDTH
    return f"{low}–{high}"


def _ordered(keys: list[Any], column: Column, *, bands: bool) -> list[Any]:
    """The distinct categories (or series) in order: every score band; a lookup's codes in the
    lookup's order; dates in time order; else the report's order."""
    seen = list(dict.fromkeys(keys))
    if bands:
        return list(range(_BANDS))
    if column.lookup:
        order = {code: i for i, code in enumerate(validation.labels(column.lookup))}
        return sorted(seen, key=lambda k: order.get(k, len(order)))
    if column.type is ColumnType.DATE:
        return sorted(seen, key=lambda k: (k is None, k or date.min))
    return seen


def _unique(labels: list[str]) -> tuple[str, ...]:
    """Labels made distinct (two departments of one name would share a bar)."""
    out: list[str] = []
    for text in labels:
        name, n = text, 1
        while name in out:
            n += 1
            name = f"{text} ({n})"
        out.append(name)
    return tuple(out)


class Charting:
    """A run's charts: `add` every batch (beside the summarizer), then `specs(locale)`."""

    def __init__(
        self,
        definitions: Sequence[ChartDefinition],
        resolved: Any,
        columns: Sequence[Column],
        cells: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        """`cells`: how people read some cells, by column key (`people_cells`): charts are for
        people in every output."""
        self._series = [
            _Series(d, resolved, columns, cells or {}) for d in definitions if d.applies(resolved)
        ]

    def add(self, batch: Sequence[Row]) -> None:
        for series in self._series:
            series.add(batch)

    def specs(self, locale: str) -> list[ChartSpec]:
        """The charts of the rows seen (a report without rows draws none)."""
        return [s.spec(locale) for s in self._series if s.tally]


__all__ = ["BAND_WIDTH", "ChartDefinition", "Charting", "Measure"]
