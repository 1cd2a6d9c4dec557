"""HTTP shapes of a report's data as JSON: a preview, and a page of a job's rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from app.common.schemas import ApiModel

# A row: an object keyed by column key (the values a JSON Lines file holds: numbers, booleans,
# null for an empty cell, datetimes as ISO 8601 in the report timezone).
RowObject = dict[str, Any]


class ColumnOut(ApiModel):
    key: str
    label: str
    type: str = Field(
        description="string, integer, number, percent (0–100), boolean, date or datetime"
    )
    unit: str | None = Field(default=None, description='What a number counts in: "%", "min", "h"')
    definition: str | None = Field(default=None, description="What the column means")


class FigureOut(ApiModel):
    label: str
    value: str = Field(description="As the files print it (`1,234`, `87.5%`, `—` when empty)")
    definition: str | None = Field(default=None, description="What the figure means")


class ParameterOut(ApiModel):
    label: str
    value: str | int


class ChartOut(ApiModel):
    key: str = Field(description="The chart's key, as the metadata API lists it")
    title: str
    description: str = Field(description="What the chart shows and how its values are computed")
    spec: dict[str, Any] = Field(
        description="A Vega-Lite v5 specification with its data inline (`data.values`): render "
        "it with vega-embed or Altair"
    )


class PreviewOut(ApiModel):
    """A report as a page of JSON: what the file of the same request would hold."""

    report_type: str
    title: str
    timezone: str
    generated_at: datetime
    columns: list[ColumnOut]
    rows: list[RowObject] = Field(description="The page: objects keyed by column key")
    sort: list[str] = Field(
        description="The sort applied (`-key` descending); empty: the report's own order"
    )
    default_sort: list[str] = Field(description="The report's own order")
    offset: int = Field(description="The first row's position in the report (0-based)")
    row_count: int = Field(description="Rows of the whole report")
    row_count_exact: bool = Field(
        description="True: `rowCount` was counted. False: an estimate (a large report whose "
        "page was found without its whole read, see `summaryIncluded`)"
    )
    summary_included: bool = Field(
        default=True,
        description="True: the whole report was read, and `summary`, `totals` and `charts` "
        "are the file's. False: the report is too large to read within the preview's time "
        "budget and, in its own order (no `sort`), its page was found from the rows before it "
        "alone: the rows are the file's, `rowCount` may be an estimate, and the summary, "
        "totals and charts (which need every row) are empty — they are in the file. A large "
        "report with a `sort` is read whole within the budget or refused with 422 "
        "`preview-too-large`",
    )
    summary: list[FigureOut] = Field(
        description="The summary figures of the whole report (empty when `summaryIncluded` is "
        "false)"
    )
    totals: dict[str, int | float | None] | None = Field(
        default=None,
        description="The totals row of the report's PDF and Excel files, by column key, over "
        "every row: counts and minutes added up, a rate as the rate of the totals (completed ÷ "
        "(enrolled − withdrawn) over every row, not an average of the rows' rates), a "
        "per-record value's mean over the records that have one, the records counted; null "
        "for a rate or mean over nothing. Columns without a meaningful total are left out; "
        "absent when the report type (or shape) has no totals row",
    )
    charts: list[ChartOut] = Field(
        default_factory=list,
        description="The report type's charts of the whole report, computed in the same read as "
        "the summary (none with `options.charts: false`)",
    )
    parameters: list[ParameterOut] = Field(description="The resolved parameters, as files print")
    resolved_parameters: dict[str, Any] = Field(
        description="The resolved parameters as a job stores them (absolute dates, `now`)"
    )
    scope: dict[str, Any] = Field(description="The effective data scope the rows were read in")
    next_cursor: str | None = Field(
        default=None,
        description="Send it as `cursor` with the same body and sort for the next page; null "
        "on the last page (or at the preview's depth limit)",
    )


class RowsPage(ApiModel):
    """A page of a completed job's stored rows."""

    job_id: str
    format: str
    columns: list[ColumnOut]
    rows: list[RowObject]
    first_row: int = Field(description="The first row's position in the file (0-based)")
    row_count: int = Field(description="Rows of the whole file")
    next_cursor: str | None = Field(default=None, description="The next page; null at the end")
    previous_cursor: str | None = Field(
        default=None, description="The page before; null on the first page"
    )


__all__ = ["ColumnOut", "FigureOut", "ParameterOut", "PreviewOut", "RowObject", "RowsPage"]
