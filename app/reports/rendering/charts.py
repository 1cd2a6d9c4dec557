"""A report's charts, one definition for every output: a `ChartSpec` (categories, series of
values, titles: labels people read, never codes) becomes a Vega-Lite v5 specification with its
data inline (`vega_lite`: the preview and the JSON Lines header carry it, the PDF draws it as
SVG), and Excel draws the same series as a native chart (`xlsx/charts.py`).

Colours: the Okabe-Ito palette (readable by the common forms of colour blindness), ordered so
that neighbouring series differ in lightness as well as hue (they stay apart in greyscale), with
a thin white line between stacked segments; a chart of one series is one dark blue.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.reports.rendering.base import ColumnType

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
# Okabe-Ito, in an order whose neighbours differ in lightness (dark blue, orange, bluish green,
# yellow, vermillion, sky blue, reddish purple, black).
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#F0E442",
    "#D55E00",
    "#56B4E9",
    "#CC79A7",
    "#000000",
)
SINGLE_COLOUR = PALETTE[0]
MAX_CATEGORIES = 30  # bars a chart shows at most (the first ones, in the report's order)
BAR_STEP = 16  # pixels per category of a horizontal bar chart
CHART_WIDTH = 420  # pixels of the plot area

Value = int | float | None


class ChartKind(StrEnum):
    BAR = "bar"  # horizontal bars, one per category (stacked by series)
    COLUMN = "column"  # vertical columns over ordered categories (periods, score bands)


@dataclass(frozen=True)
class ChartSeries:
    name: str  # the label of what the series counts ("Compliant"); "" for a lone series
    values: tuple[Value, ...]  # one per category


@dataclass(frozen=True)
class ChartSpec:
    """One chart of a run: what every output draws."""

    key: str
    title: str
    description: str
    kind: ChartKind
    category_title: str  # the axis of the categories ("Department")
    value_title: str  # the axis of the values ("Completion rate (%)")
    value_type: ColumnType  # INTEGER (counts) or PERCENT (0-100)
    categories: tuple[str, ...]
    series: tuple[ChartSeries, ...]
    series_title: str = ""  # the legend's title ("Compliance state")
    note: str = ""  # e.g. "The first 30 of 42 departments"

    @property
    def stacked(self) -> bool:
        return len(self.series) > 1

    def rows(self) -> list[tuple[str, str, Value]]:
        """(category, series, value) for every value, categories in order."""
        return [
            (category, series.name, series.values[i])
            for i, category in enumerate(self.categories)
            for series in self.series
        ]

    def largest(self) -> float:
        """The longest bar: the largest value, or sum of a stacked bar's values."""
        sums = [sum(s.values[i] or 0 for s in self.series) for i in range(len(self.categories))]
        return float(max(sums, default=0))

    def alternative(self, *, limit: int = 12) -> str:
        """The chart in words (a PDF figure's text alternative): its title and its first
        values."""
        parts = []
        for category, series, value in self.rows()[:limit]:
            shown = "—" if value is None else _number(value, self.value_type)
            parts.append(f"{category}{f' – {series}' if series else ''}: {shown}")
        more = " …" if len(self.rows()) > limit else ""
        return f"{self.title}. {'; '.join(parts)}{more}"


def _number(value: int | float, kind: ColumnType) -> str:
    if kind is ColumnType.PERCENT:
        return f"{value:.1f}%"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def vega_lite(chart: ChartSpec) -> dict[str, Any]:
    """The chart as a Vega-Lite v5 specification with its data inline (`data.values`: one
    object per value, `category`, `series` and `value`)."""
    percent = chart.value_type is ColumnType.PERCENT
    values: list[dict[str, Any]] = [
        {"category": c, "series": s, "value": v} if chart.stacked else {"category": c, "value": v}
        for c, s, v in chart.rows()
    ]
    category: dict[str, Any] = {
        "field": "category",
        "type": "ordinal" if chart.kind is ChartKind.COLUMN else "nominal",
        "sort": None,  # the report's order
        "title": chart.category_title,
    }
    value: dict[str, Any] = {
        "field": "value",
        "type": "quantitative",
        "title": chart.value_title,
    }
    if percent:
        value["scale"] = {"domain": [0, 100]}
    else:
        value["axis"] = {"format": ",d", "tickMinStep": 1}
        top = chart.largest()
        if top <= 10:  # whole numbers only (a count of 2 has no tick at 1.5)
            value["axis"]["values"] = list(range(0, int(top) + 1))
    tooltip: list[dict[str, Any]] = [
        {"field": "category", "type": "nominal", "title": chart.category_title},
        {
            "field": "value",
            "type": "quantitative",
            "title": chart.value_title,
            "format": ".1f" if percent else ",",
        },
    ]
    horizontal = chart.kind is ChartKind.BAR
    encoding: dict[str, Any] = (
        {"y": category, "x": value} if horizontal else {"x": category, "y": value}
    )
    if not horizontal:
        category["axis"] = {"labelAngle": 0 if len(chart.categories) <= 10 else -45}
    mark: dict[str, Any] = {"type": "bar", "tooltip": True}
    if chart.stacked:
        names = [s.name for s in chart.series]
        encoding["color"] = {
            "field": "series",
            "type": "nominal",
            "title": chart.series_title,
            "sort": names,
            "scale": {"domain": names, "range": list(_colours(len(names)))},
            "legend": {"orient": "bottom", "columns": min(len(names), 4)},
        }
        encoding["order"] = {"field": "seriesOrder", "type": "quantitative"}
        for item in values:
            item["seriesOrder"] = names.index(item["series"])
        tooltip.insert(1, {"field": "series", "type": "nominal", "title": chart.series_title})
        mark.update(stroke="#FFFFFF", strokeWidth=0.75)
    else:
        mark["color"] = SINGLE_COLOUR
    encoding["tooltip"] = tooltip
    title: dict[str, Any] = {"text": chart.title, "anchor": "start"}
    if chart.note:
        title["subtitle"] = chart.note
    spec: dict[str, Any] = {
        "$schema": VEGA_LITE_SCHEMA,
        "title": title,
        "description": chart.description,
        "data": {"values": values},
        "mark": mark,
        "encoding": encoding,
        "width": CHART_WIDTH,
        "config": {
            "font": "DejaVu Sans, sans-serif",
            "view": {"stroke": None},
            "axis": {"labelLimit": 180},
        },
    }
    spec["height"] = {"step": BAR_STEP} if horizontal else 220
    return spec


def _colours(count: int) -> tuple[str, ...]:
    return tuple(PALETTE[i % len(PALETTE)] for i in range(count))


def colour(index: int, count: int) -> str:
    """The colour of series `index` of `count` (one series: the single colour)."""
    return SINGLE_COLOUR if count == 1 else _colours(count)[index]


__all__ = [
    "MAX_CATEGORIES",
    "PALETTE",
    "VEGA_LITE_SCHEMA",
    "ChartKind",
    "ChartSeries",
    "ChartSpec",
    "colour",
    "vega_lite",
]
