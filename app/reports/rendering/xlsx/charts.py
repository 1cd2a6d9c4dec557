"""The workbook's "Charts" sheet: each of the report's charts as a native Excel chart
(XlsxWriter's `add_chart`, not a picture) beside the table of its series, which the chart
references: a reader sees the figures and can re-plot them. Same data, titles and colours as
the Vega-Lite specification (`rendering.charts`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xlsxwriter import Workbook
from xlsxwriter.worksheet import Worksheet

from app.i18n import N_, translate
from app.reports.rendering.base import ColumnType, RenderError, neutralise_formula
from app.reports.rendering.charts import ChartKind, ChartSpec, colour

CHARTS_SHEET_NAME = N_("Charts")
_CHART_COLUMN = 6  # charts start in column G, right of the widest series table shown at once
_ROW_PIXELS = 20
_MIN_CHART_ROWS = 16


def write_charts_sheet(
    workbook: Workbook,
    charts: Sequence[ChartSpec],
    locale: str,
    print_setup: Callable[[Worksheet], None],
) -> str | None:
    """Adds the sheet (nothing when there are no charts); returns its name."""
    if not charts:
        return None
    name = translate(locale, CHARTS_SHEET_NAME)
    sheet = workbook.add_worksheet(name)
    print_setup(sheet)
    bold = workbook.add_format({"bold": True, "font_size": 12})
    header = workbook.add_format({"bold": True, "bg_color": "#E8EDF3", "bottom": 1})
    note = workbook.add_format({"italic": True, "font_color": "#475569"})
    counts = workbook.add_format({"num_format": "#,##0"})
    rates = workbook.add_format({"num_format": "0.0"})
    sheet.set_column(0, 0, 28)
    widest = max(len(c.series) for c in charts)
    sheet.set_column(1, max(widest, 1), 14)
    row = 0
    for chart in charts:
        sheet.write_string(row, 0, neutralise_formula(chart.title), bold)
        row += 1
        if chart.note:
            sheet.write_string(row, 0, neutralise_formula(chart.note), note)
            row += 1
        top = row
        sheet.write_string(row, 0, neutralise_formula(chart.category_title), header)
        names = [s.name or chart.value_title for s in chart.series]
        for s, title in enumerate(names, start=1):
            sheet.write_string(row, s, neutralise_formula(title), header)
        number = rates if chart.value_type is ColumnType.PERCENT else counts
        for i, category in enumerate(chart.categories):
            r = top + 1 + i
            sheet.write_string(r, 0, neutralise_formula(category))
            for s, series in enumerate(chart.series, start=1):
                value = series.values[i]
                if value is None:
                    sheet.write_blank(r, s, None)
                else:
                    sheet.write_number(r, s, value, number)
        last = top + max(len(chart.categories), 1)
        _insert_chart(workbook, sheet, name, chart, top, last)
        height = max(_chart_rows(chart), len(chart.categories) + 1)
        row = top + height + 2
    return name


def _chart_rows(chart: ChartSpec) -> int:
    return max(_MIN_CHART_ROWS, len(chart.categories) + 4 if chart.kind is ChartKind.BAR else 0)


def _insert_chart(
    workbook: Workbook, sheet: Worksheet, sheet_name: str, chart: ChartSpec, top: int, last: int
) -> None:
    horizontal = chart.kind is ChartKind.BAR
    options: dict[str, str] = {"type": "bar" if horizontal else "column"}
    if chart.stacked:
        options["subtype"] = "stacked"
    excel = workbook.add_chart(options)
    if excel is None:
        raise RenderError(f"XlsxWriter refused the chart {chart.key}")
    count = len(chart.series)
    for s in range(1, count + 1):
        excel.add_series(
            {
                "name": [sheet_name, top, s],
                "categories": [sheet_name, top + 1, 0, last, 0],
                "values": [sheet_name, top + 1, s, last, s],
                "fill": {"color": colour(s - 1, count)},
                "border": {"color": "#FFFFFF", "width": 0.75},
                "gap": 60,
                **({"overlap": 100} if chart.stacked else {}),
            }
        )
    value_axis: dict[str, object] = {
        "name": chart.value_title,
        "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}},
    }
    if chart.value_type is ColumnType.PERCENT:
        value_axis.update(min=0, max=100)
    else:
        value_axis.update(min=0, num_format="#,##0")
    category_axis: dict[str, object] = {"name": chart.category_title}
    if horizontal:
        category_axis["reverse"] = True  # the first category on top, as in the table
        category_axis["crossing"] = "max"  # and the value axis below it
        excel.set_x_axis(value_axis)
        excel.set_y_axis(category_axis)
    else:
        excel.set_x_axis(category_axis)
        excel.set_y_axis(value_axis)
    excel.set_title({"name": chart.title, "name_font": {"size": 12, "bold": True}})
    excel.set_legend({"position": "bottom"} if chart.stacked else {"none": True})
    rows = _chart_rows(chart)
    excel.set_size({"width": 640, "height": rows * _ROW_PIXELS})
    # The chart in words is its "Alt Text" for screen readers.
    sheet.insert_chart(
        top, _CHART_COLUMN, excel, {"object_position": 1, "description": chart.alternative()}
    )


__all__ = ["CHARTS_SHEET_NAME", "write_charts_sheet"]
