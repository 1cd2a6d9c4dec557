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

from app.i18n import N_, _
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
    name = N_("Department summary")
    description = N_(
        "One row per department: enrollments and completions in the range, completion rate, "
        "average score, active learners, learning hours and overdue enrollments."
    )
    parameters_model = DepartmentSummaryParameters
    resolved_model = DepartmentSummaryResolved
    source = Department
    columns: ClassVar[list[Column]] = [
        column(
            "departmentName",
            N_("Department"),
            "string",
            N_("The department (indented under its parent)"),
        ),
        column("departmentCode", N_("Code"), "string", N_("The department's code")),
        column(
            "enrollments",
            N_("Enrollments"),
            "integer",
            N_("Enrollments enrolled in the range (the cohort), the whole subtree included"),
        ),
        column(
            "completions",
            N_("Completions"),
            "integer",
            N_("Enrollments completed in the range, whenever enrolled"),
        ),
        column(
            "completionRate",
            N_("Completion rate"),
            "percent",
            N_("Of the cohort, completed ÷ (enrolled − withdrawn), as a percentage"),
        ),
        column(
            "averageScore",
            N_("Average score"),
            "number",
            N_("Mean score of the enrollments completed in the range (1 decimal, half up)"),
        ),
        column(
            "activeLearners",
            N_("Active learners"),
            "integer",
            N_("Distinct learners with a learning event in the range"),
        ),
        column(
            "learningHours",
            N_("Learning hours"),
            "number",
            N_("Sum of the range's learning events' durations ÷ 3600"),
        ),
        column(
            "overdue",
            N_("Overdue"),
            "integer",
            N_("Enrollments not completed or withdrawn whose due date is before the range's end"),
        ),
        # The tree (CSV only: PDF and Excel indent the department's name instead).
        column(
            "level",
            N_("Level"),
            "integer",
            N_("Depth in the department tree (0: a top-level row)"),
            csv_only=True,
        ),
        column(
            "parentCode",
            N_("Parent code"),
            "string",
            N_("The code of the parent department's row (empty for a top-level row)"),
            csv_only=True,
        ),
    ]
    default_sort: ClassVar[list[str]] = ["departmentName"]
    # Instructors' scope is a set of courses, not departments.
    roles = (Role.ADMIN, Role.MANAGER)
    option_labels: ClassVar[dict[str, str]] = {
        "includeSubDepartments": N_("Include sub-departments")
    }
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
            (_("Departments"), fmt_count(self.departments)),
            (_("Enrollments"), fmt_count(self.enrollments)),
            (_("Completions"), fmt_count(self.completions)),
            (
                _("Completion rate"),
                fmt_rate(rate(self.completed, self.enrollments - self.withdrawn)),
            ),
            (_("Learning hours"), fmt_number(round1(self.hours))),
            (_("Overdue"), fmt_count(self.overdue)),
        ]


DEPARTMENT_SUMMARY = DepartmentSummary()
_SUMMARY_COLUMNS = column_index(
    DEPARTMENT_SUMMARY.columns, "enrollments", "completions", "learningHours", "overdue", "level"
)
_NAME_ORDER = {"collation": NAME_COLLATION}
