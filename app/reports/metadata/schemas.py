"""HTTP shapes of the metadata API: what the frontend builds its report form from."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from app.common.schemas import ApiModel, listed
from app.error_codes import ErrorCode
from app.errors import ErrorCodeValue
from app.lookups.codes import FormatValue, ReportTypeValue
from app.reports.rendering.base import ColumnType
from app.security import Role


class ColumnOut(ApiModel):
    key: str
    label: str
    type: ColumnType
    description: str = Field(
        default="",
        description="What the column means (how a figure is computed): the definition every "
        "file and e-mail states for it",
    )
    lookup: str | None = Field(
        default=None,
        description="The lookup category whose codes the column holds (CSV prints the codes, "
        "PDF and Excel their labels: GET /api/v1/reports/metadata/lookups/{category}); null "
        "when it holds no lookup codes",
    )
    definition: str = Field(
        default="",
        description="The column's definition (the same text as `description`): what the "
        "Definitions block of a file states when the column is chosen",
    )
    default_visible: bool = Field(
        default=True,
        description="Whether a report shows it when the request chooses no `columns`",
    )
    group_key: bool = Field(
        default=False,
        description="The column names what a row groups (a course, a department, a period): "
        "every choice keeps it, first when the choice leaves it out",
    )
    csv_only: bool = Field(
        default=False,
        description="Only in CSV and JSON Lines (files for machines): PDF and Excel leave it "
        "out even when chosen",
    )


class FigureOut(ApiModel):
    key: str
    label: str
    type: str = Field(description="integer, number, percent or string")
    description: str = Field(description="The figure's definition, as files and e-mails state it")


class MetricOut(ApiModel):
    key: str
    label: str
    type: str = Field(description="integer, number or percent")
    unit: str | None = Field(description="count, % (0–100), h, points; null: a plain number")
    description: str = Field(description="The figure's definition, as files and e-mails state it")


class ModeOut(ApiModel):
    parameters: dict[str, Any] = Field(
        description="The parameters that select this shape of the report ({} for a type with "
        "one shape)"
    )
    columns: list[ColumnOut]
    summary: list[FigureOut] = Field(description="The summary figures files show in this shape")


class ChartDefinitionOut(ApiModel):
    key: str
    title: str
    description: str = Field(description="What the chart shows and how its values are computed")
    type: str = Field(description="bar (horizontal bars) or column (vertical columns)")
    when: dict[str, Any] | None = Field(
        default=None,
        description="The parameters of the shapes that draw it (a mode's `parameters`); null: "
        "every shape",
    )


class FormatOut(ApiModel):
    code: FormatValue
    label: str
    description: str | None = None
    content_type: str
    file_extension: str
    max_rows: int = Field(description="Rows a file of this format holds at most")
    truncates: bool = Field(
        description="true: past maxRows the file holds the first rows and says so "
        "(PDF); false: larger reports are refused up front"
    )


class ReportTypeSummary(ApiModel):
    key: ReportTypeValue
    name: str
    description: str
    formats: list[FormatValue]
    default_sort: list[str]


class Limits(ApiModel):
    max_rows_per_format: dict[str, int] = Field(description="Format code -> row limit")
    max_date_range_days: int
    max_filter_ids: int = Field(description="Ids at most in one id-list filter")


class ChangeFieldOut(ApiModel):
    key: str = Field(description="The column compared")
    label: str
    banded: bool = Field(
        description="Compared by band (progress: 0 / 1-49 / 50-99 / 100) "
        "or rounded, not by its raw value"
    )


class ChangeReportOut(ApiModel):
    key: list[str] = Field(description="The columns that say which rows are the same row")
    fields: list[ChangeFieldOut]
    transitions: list[str] = Field(description="The changes counted in words")


class ReportTypeDetail(ApiModel):
    key: ReportTypeValue
    name: str
    description: str
    parameters_schema: dict[str, Any] = Field(
        description="JSON Schema of `parameters` (camelCase), for building the form"
    )
    columns: list[ColumnOut] = Field(description="The columns of the default shape (modes[0])")
    summary: list[FigureOut] = Field(
        description="The summary figures of the default shape (modes[0])"
    )
    modes: list[ModeOut] = Field(
        description="Every shape a report of this type takes (rows per submission or per "
        "course, a department tree or a flat list), with its columns and summary figures and "
        "so every definition its files may state; the first is the default"
    )
    alertable_metrics: list[MetricOut] = Field(
        default_factory=list,
        description="The summary figures a schedule's alert conditions may name (`metric`)",
    )
    change_report: ChangeReportOut | None = Field(
        default=None,
        description="What a schedule's change report (`changes`) compares: the row key and "
        "the fields (with their bands); null: the type offers no change reports",
    )
    charts: list[ChartDefinitionOut] = Field(
        description="The charts its files and previews draw (Vega-Lite v5 in the preview and "
        "the JSON Lines header, vector graphics in the PDF, native charts in Excel); "
        "`options.charts: false` leaves them out"
    )
    default_sort: list[str]
    formats: list[FormatOut]
    roles: list[Annotated[str, listed(Role)]] = Field(description="Roles that may run it")
    limits: Limits


class DatePresetOut(ApiModel):
    preset: str
    label: str
    from_: date | None = Field(
        default=None, alias="from", description="First local day (included); null for custom"
    )
    to: date | None = Field(default=None, description="Last local day (included)")
    start: datetime | None = Field(default=None, description="UTC start (included)")
    end: datetime | None = Field(default=None, description="UTC end (excluded)")
    timezone: str


class DatePresetList(ApiModel):
    timezone: str
    now: datetime = Field(description="The moment the ranges were resolved at (UTC)")
    items: list[DatePresetOut]


class FilterKind(StrEnum):
    DEPARTMENTS = "departments"
    COURSES = "courses"
    USERS = "users"


class FilterOption(ApiModel):
    """A department, course or person to filter reports on. Departments also carry their place
    in the tree you see and their counts; those fields are null for courses and people."""

    id: str
    label: str
    description: str | None = Field(default=None, description="Code, e-mail or category")
    parent_id: str | None = Field(
        default=None,
        description="Departments: the nearest department above it that you may see (null at "
        "the top of your tree: the organization's top for admins, the departments you manage "
        "for managers)",
    )
    level: int | None = Field(
        default=None, description="Departments: its depth in your tree (0 at the top)"
    )
    child_count: int | None = Field(
        default=None,
        description="Departments: the departments directly beneath it in your tree (list them "
        "with `parentId`); the other filters do not narrow it",
    )
    learner_count: int | None = Field(
        default=None,
        description="Departments: the active people in this department itself (not its "
        "sub-departments) that you may see; null when counting is not cheap",
    )
    learner_count_at_least: int | None = Field(
        default=None, description="Departments: a lower bound of `learnerCount` (equal when known)"
    )
    enrollment_count: int | None = Field(
        default=None,
        description="Departments: the enrollments in this department itself that you may see "
        "(in the chosen `courseIds`, if any); null when counting is not cheap",
    )
    enrollment_count_at_least: int | None = Field(
        default=None,
        description="Departments: a lower bound of `enrollmentCount` (equal when known)",
    )


class ErrorCodeOut(ApiModel):
    """One error code the API answers with (or a failed job carries)."""

    code: ErrorCodeValue = Field(description="`<noun>-<problem>`, kebab-case")
    status: int | None = Field(
        description="The HTTP status it is sent with; null: only a failed job's `error.code` "
        "or a rejected batch item's `code`"
    )
    title: str = Field(description="The problem's `title`")
    when: str = Field(description="When it happens")
    formerly: list[str] = Field(description="Earlier names of the code (renamed codes)")

    @classmethod
    def of(cls, entry: ErrorCode) -> ErrorCodeOut:
        return cls(
            code=entry.code,
            status=entry.status,
            title=entry.title,
            when=entry.when,
            formerly=list(entry.formerly),
        )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "code": "template-version-mismatch",
                    "status": 412,
                    "title": "Template changed",
                    "when": "If-Match (or `version`) names an older version than the stored "
                    "one (the answer's ETag is the current one).",
                    "formerly": ["version-mismatch"],
                }
            ]
        }
    }
