"""department-summary: one row per department in scope (spec §5.1).

With `includeSubDepartments` (default) the rows form the tree of the departments in scope (or of
the requested ones and everything under them): each row rolls up its whole subtree, children
follow their parent by name, `level` and `parentCode` say where a row sits. Without it, each row
holds the department's own figures, sorted by name. The completion rate is the one definition:
of the enrollments enrolled in range, completed ÷ (enrolled − withdrawn), and the row shows the
three figures it divides (enrolled in range, withdrawn and completed of them) beside it, apart
from the completions in range (completed in the range, whenever enrolled). Each mode's column
definitions say which data a row holds (`TREE_COLUMNS`, `FLAT_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.i18n import N_
from app.platform.models import Department
from app.reports.dates import DateRange
from app.reports.reading.preference import report_reads
from app.reports.reading.query import (
    NAME_COLLATION,
    Plan,
    Row,
    Stage,
    object_ids,
    scope_match,
)
from app.reports.rendering.totals import Total
from app.reports.types import chart_definitions
from app.reports.types.base import Column, Figure, ReportDefinition, column_index, measure
from app.reports.types.department_columns import FLAT_COLUMNS, FLAT_TOTALS, TREE_COLUMNS
from app.reports.types.department_tree import own_figures, tree_rows
from app.reports.types.figures import rate, round1
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
        "One row per department: the enrollments enrolled in the range with those of them "
        "withdrawn and completed, the completion rate they give, the completions in the range, "
        "average score, active learners, learning hours and overdue enrollments."
    )
    parameters_model = DepartmentSummaryParameters
    resolved_model = DepartmentSummaryResolved
    source = Department
    columns: ClassVar[list[Column]] = TREE_COLUMNS
    default_sort: ClassVar[list[str]] = ["departmentName"]
    group_columns = ("departmentName",)
    charts = chart_definitions.DEPARTMENT_SUMMARY
    # Instructors' scope is a set of courses, not departments.
    roles = (Role.ADMIN, Role.MANAGER)
    mode_parameters: ClassVar[tuple[dict[str, Any], ...]] = (
        {"includeSubDepartments": True},
        {"includeSubDepartments": False},
    )
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
        columns: Sequence[str] | None = None,
    ) -> AsyncIterator[list[Row]]:
        """The rows in tree order: the departments are few, so their figures are read per
        department (`own_figures`: three grouped aggregations and the events added up in the
        worker) and rolled up here."""
        typed = self.typed(resolved)
        plan = await self.plan(typed, scope)
        cursor = await report_reads(Department.get_pymongo_collection()).aggregate(
            plan.pipeline, **plan.options
        )
        departments = list(await cursor.to_list())
        # Course / learner scope still applies inside each department (defence in depth; the
        # roles allowed here have department scopes).
        within = scope_match(scope, department_field=None)
        every = not plan.pipeline[0]["$match"]  # no department filter, no department scope
        ids = [d["_id"] for d in departments]
        figures = await own_figures(ids, typed.date_range, within, every=every)
        rows = list(tree_rows(departments, figures, roll_up=typed.include_sub_departments))
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]

    def run_columns(self, resolved: DepartmentSummaryResolved) -> list[Column]:
        return TREE_COLUMNS if resolved.include_sub_departments else FLAT_COLUMNS

    def run_totals(self, resolved: DepartmentSummaryResolved) -> Mapping[str, Total]:
        # A tree's rows roll up their subtrees (the top-level rows are its totals): no totals
        # row. A flat list's rows are each department's own data: they add up.
        return {} if resolved.include_sub_departments else FLAT_TOTALS

    def summary(self, resolved: DepartmentSummaryResolved | None) -> DepartmentSummarySummary:
        tree = resolved.include_sub_departments if resolved is not None else True
        return DepartmentSummarySummary(tree=tree)


def _department(doc: dict[str, Any]) -> Row:
    return (doc.get("name"), doc.get("code"))


class DepartmentSummarySummary:
    """Departments and the totals of the rows (every enrollment counted once: in tree mode the
    top-level rows only, each rolls up its own subtree): the cohort enrolled in range, its
    withdrawn and completed, the completion rate they give, the completions in range, the
    learning hours (summed unrounded, rounded once) and overdue."""

    def __init__(self, *, tree: bool = True) -> None:
        self.columns = TREE_COLUMNS if tree else FLAT_COLUMNS
        self.departments = self.enrolled = self.withdrawn = self.completed = 0
        self.completions = self.overdue = 0
        self.seconds = 0.0
        self.tree = tree

    def add(self, batch: Sequence[Row]) -> None:
        (
            at_enrolled,
            at_withdrawn,
            at_completed,
            at_completions,
            at_hours,
            at_overdue,
            at_level,
        ) = _SUMMARY_COLUMNS
        for row in batch:
            self.departments += 1
            if row[at_level]:
                continue  # already counted in its parent's row
            self.enrolled += row[at_enrolled]
            self.withdrawn += row[at_withdrawn]
            self.completed += row[at_completed]
            self.completions += row[at_completions]
            self.overdue += row[at_overdue]
            # The row's unrounded time when it carries it (`DepartmentRow`).
            seconds = getattr(row, "seconds", None)
            self.seconds += seconds if seconds is not None else (row[at_hours] or 0.0) * 3600

    def figures(self) -> list[Figure]:
        by_key = {c.key: c for c in self.columns}
        departments = measure(
            "departments",
            N_("Departments"),
            "integer",
            "The report's rows: the departments in scope"
            + (", each rolling up its whole subtree" if self.tree else ", each with its own data"),
        )
        return [
            departments.figure(self.departments),
            by_key["enrollments"].figure(self.enrolled),
            by_key["withdrawn"].figure(self.withdrawn),
            by_key["completed"].figure(self.completed),
            by_key["completionRate"].figure(rate(self.completed, self.enrolled - self.withdrawn)),
            by_key["completions"].figure(self.completions),
            by_key["learningHours"].figure(round1(self.seconds / 3600)),
            by_key["overdue"].figure(self.overdue),
        ]


DEPARTMENT_SUMMARY = DepartmentSummary()
_SUMMARY_COLUMNS = column_index(
    TREE_COLUMNS,
    "enrollments",
    "withdrawn",
    "completed",
    "completions",
    "learningHours",
    "overdue",
    "level",
)
_NAME_ORDER = {"collation": NAME_COLLATION}
