"""department-summary: one row per department in scope (spec §5.1).

With `includeSubDepartments` (default) the rows form the tree of the departments in scope (or of
the requested ones and everything under them): each row rolls up its whole subtree, children
follow their parent by name, `level` and `parentCode` say where a row sits. Without it, each row
holds the department's own figures, sorted by name. The completion rate is the one definition:
of the enrollments enrolled in range, completed ÷ (enrolled − withdrawn).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.platform.models import Department
from app.reports.dates import DateRange
from app.reports.reading.query import (
    NAME_COLLATION,
    Plan,
    Row,
    Stage,
    object_ids,
    scope_match,
)
from app.reports.types.base import Column, ReportDefinition, column, column_index
from app.reports.types.department_tree import own_figures, tree_rows
from app.reports.types.figures import fmt_count, fmt_number, fmt_rate, rate, round1
from app.reports.types.parameters import (
    DATE_RANGE_DESCRIPTION,
    DEPARTMENTS_DESCRIPTION,
    IdList,
    RangeResolved,
    ReportParameters,
    default_date_range,
)
from app.security import DataScope, Role


class DepartmentSummaryParameters(ReportParameters):
    date_range: DateRange = Field(
        default_factory=default_date_range, description=DATE_RANGE_DESCRIPTION
    )
    department_ids: IdList | None = Field(default=None, description=DEPARTMENTS_DESCRIPTION)
    include_sub_departments: bool = Field(
        default=True,
        description=(
            "Rows form the department tree: the requested departments and everything under "
            "them, each row rolling up its whole subtree. false: only the requested departments, "
            "each with its own figures"
        ),
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dateRange": {"preset": "last-month"},
                    "timezone": "Europe/Berlin",
                    "includeSubDepartments": True,
                }
            ]
        }
    )


def _sub_lookup(source: str, target: str, pipeline: list[dict[str, Any]]) -> dict[str, Any]:
    """Joins one department's records (indexed on department_id + a date) reduced by
    `pipeline` to a single document."""
    return {
        "$lookup": {
            "from": source,
            "localField": "_id",
            "foreignField": "department_id",
            "pipeline": pipeline,
            "as": target,
        }
    }


class DepartmentSummaryResolved(RangeResolved):
    department_ids: list[str] | None = None
    include_sub_departments: bool = True


class DepartmentSummary(ReportDefinition[DepartmentSummaryParameters, DepartmentSummaryResolved]):
    key = "department-summary"
    name = "Department summary"
    description = (
        "One row per department: enrollments and completions in the range, completion rate, "
        "average score, active learners, learning hours and overdue enrollments."
    )
    parameters_model = DepartmentSummaryParameters
    resolved_model = DepartmentSummaryResolved
    source = Department
    columns: ClassVar[list[Column]] = [
        column(
            "departmentName", "Department", "string", "The department (indented under its parent)"
        ),
        column("departmentCode", "Code", "string", "The department's code"),
        column(
            "enrollments",
            "Enrollments",
            "integer",
            "Enrollments enrolled in the range (the cohort), the whole subtree included",
        ),
        column(
            "completions",
            "Completions",
            "integer",
            "Enrollments completed in the range, whenever enrolled",
        ),
        column(
            "completionRate",
            "Completion rate",
            "percent",
            "Of the cohort, completed ÷ (enrolled − withdrawn), as a percentage",
        ),
        column(
            "averageScore",
            "Average score",
            "number",
            "Mean score of the enrollments completed in the range (1 decimal, half up)",
        ),
        column(
            "activeLearners",
            "Active learners",
            "integer",
            "Distinct learners with a learning event in the range",
        ),
        column(
            "learningHours",
            "Learning hours",
            "number",
            "Sum of the range's learning events' durations ÷ 3600",
            unit="h",
        ),
        column(
            "overdue",
            "Overdue",
            "integer",
            "Enrollments not completed or withdrawn whose due date is before the range's end",
        ),
        # The tree (CSV only: PDF and Excel indent the department's name instead).
        column(
            "level",
            "Level",
            "integer",
            "Depth in the department tree (0: a top-level row)",
            csv_only=True,
        ),
        column(
            "parentCode",
            "Parent code",
            "string",
            "The code of the parent department's row (empty for a top-level row)",
            csv_only=True,
        ),
    ]
    default_sort: ClassVar[list[str]] = ["departmentName"]
    # Instructors' scope is a set of courses, not departments.
    roles = (Role.ADMIN, Role.MANAGER)
    option_labels: ClassVar[dict[str, str]] = {"includeSubDepartments": "Include sub-departments"}
    # The tree is built from the requested departments themselves (see `_department_match`).
    expands_departments = False

    def resolve_parameters(
        self, params: DepartmentSummaryParameters, now: datetime
    ) -> DepartmentSummaryResolved:
        return DepartmentSummaryResolved(**self.resolved_fields(params, now))

    def _department_match(
        self, resolved: DepartmentSummaryResolved, scope: DataScope
    ) -> dict[str, Any]:
        conditions: list[dict[str, Any]] = []
        requested = resolved.department_ids
        if requested is not None:
            ids = object_ids(requested)
            if resolved.include_sub_departments:
                conditions.append({"$or": [{"_id": {"$in": ids}}, {"ancestor_ids": {"$in": ids}}]})
            else:
                conditions.append({"_id": {"$in": ids}})
        if scope.department_ids is not None:
            conditions.append({"_id": {"$in": object_ids(scope.department_ids)}})
        if not conditions:
            return {}
        return conditions[0] if len(conditions) == 1 else {"$and": conditions}

    async def count_stages(
        self, resolved: DepartmentSummaryResolved, scope: DataScope
    ) -> list[Stage]:
        return [{"$match": self._department_match(resolved, scope)}]

    def pipeline(self, resolved: DepartmentSummaryResolved, scope: DataScope) -> list[Stage]:
        """The departments the rows are about (their figures are read in `fetch`)."""
        return [
            {"$match": self._department_match(resolved, scope)},
            {"$sort": {"name": 1, "_id": 1}},
            {"$project": {"name": 1, "code": 1, "parent_id": 1}},
        ]

    async def plan(self, resolved: DepartmentSummaryResolved, scope: DataScope) -> Plan:
        return Plan(self.pipeline(resolved, scope), _department, options=_NAME_ORDER)

    async def fetch(
        self,
        resolved: Mapping[str, Any] | DepartmentSummaryResolved,
        scope: DataScope,
        batch_size: int,
    ) -> AsyncIterator[list[Row]]:
        """The rows in tree order: the departments are few, so their figures are read in four
        grouped aggregations and rolled up here."""
        typed = self.typed(resolved)
        plan = await self.plan(typed, scope)
        cursor = await Department.get_pymongo_collection().aggregate(plan.pipeline, **plan.options)
        departments = list(await cursor.to_list())
        # Course / learner scope still applies inside each department (defence in depth; the
        # roles allowed here have department scopes).
        within = scope_match(scope, department_field=None)
        figures = await own_figures([d["_id"] for d in departments], typed.date_range, within)
        rows = list(tree_rows(departments, figures, roll_up=typed.include_sub_departments))
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]

    def summary(self, resolved: DepartmentSummaryResolved | None) -> DepartmentSummarySummary:
        return DepartmentSummarySummary()


def _department(doc: dict[str, Any]) -> Row:
    return (doc.get("name"), doc.get("code"))


class DepartmentSummarySummary:
    """Departments, enrollments, completions, overall completion rate, learning hours, overdue;
    every enrollment counted once (top-level rows only, each rolls up its own subtree)."""

    definitions: ClassVar[dict[str, str]] = {
        "Departments": "The report's rows: departments in scope",
        "Enrollments": "Enrollments enrolled in the range, each counted once",
        "Completions": "Enrollments completed in the range, each counted once",
        "Completion rate": "Of the enrollments enrolled in the range, completed ÷ "
        "(enrolled − withdrawn), as a percentage",
        "Learning hours": "Σ durationSeconds of the learning events in the range ÷ 3600",
        "Overdue": "Enrollments neither completed nor withdrawn whose due date is before the "
        "range's end",
    }

    def __init__(self) -> None:
        self.departments = self.enrollments = self.completions = self.overdue = 0
        self.withdrawn = self.completed = 0
        self.hours = 0.0

    def add(self, batch: Sequence[Row]) -> None:
        at_enrollments, at_completions, at_hours, at_overdue, at_level = _SUMMARY_COLUMNS
        for row in batch:
            self.departments += 1
            if row[at_level]:
                continue  # already counted in its parent's row
            self.enrollments += row[at_enrollments]
            self.completions += row[at_completions]
            self.hours += row[at_hours] or 0.0
            self.overdue += row[at_overdue]
            _, withdrawn, completed = getattr(row, "cohort", (0, 0, 0))
            self.withdrawn += withdrawn
            self.completed += completed

    def figures(self) -> list[tuple[str, str]]:
        return [
            ("Departments", fmt_count(self.departments)),
            ("Enrollments", fmt_count(self.enrollments)),
            ("Completions", fmt_count(self.completions)),
            (
                "Completion rate",
                fmt_rate(rate(self.completed, self.enrollments - self.withdrawn)),
            ),
            ("Learning hours", fmt_number(round1(self.hours))),
            ("Overdue", fmt_count(self.overdue)),
        ]


DEPARTMENT_SUMMARY = DepartmentSummary()
_SUMMARY_COLUMNS = column_index(
    DEPARTMENT_SUMMARY.columns, "enrollments", "completions", "learningHours", "overdue", "level"
)
_NAME_ORDER = {"collation": NAME_COLLATION}
