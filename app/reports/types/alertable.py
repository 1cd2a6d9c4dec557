"""The summary figures a schedule may alert on: every numeric figure a report type's summary
shows in any of its shapes (counts, rates, averages), each with its one definition (the same
text the files and e-mails state) and its unit."""

from __future__ import annotations

from dataclasses import dataclass

from app.reports.rendering.base import ColumnType
from app.reports.types.base import AnyReportDefinition

NUMERIC = (ColumnType.INTEGER, ColumnType.NUMBER, ColumnType.PERCENT)
# What a figure of each type counts in; a number's unit is named by its key when known.
_UNITS = {ColumnType.INTEGER: "count", ColumnType.PERCENT: "%"}
_NUMBER_UNITS = {
    "learningHours": "h",
    "averageScore": "points",
    "minScore": "points",
    "maxScore": "points",
}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    type: ColumnType
    unit: str | None
    definition: str


def alertable_metrics(definition: AnyReportDefinition) -> list[Metric]:
    """The type's numeric summary figures over all its shapes (the first shape's definition
    when two shapes share a key), in the order the summaries show them. Labels and
    definitions are in the current locale (`use_locale`)."""
    found: dict[str, Metric] = {}
    for mode in definition.modes():
        for figure in mode.summary:
            if figure.type not in NUMERIC or figure.key in found:
                continue
            unit = _UNITS.get(figure.type) or _NUMBER_UNITS.get(figure.key)
            found[figure.key] = Metric(
                figure.key, figure.label, figure.type, unit, figure.definition
            )
    return list(found.values())
