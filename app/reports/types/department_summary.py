"""department-summary: one row per department in scope (spec §5.1).

Each row holds that department's own figures (the enrollments and events denormalised onto it);
`includeSubDepartments` decides whether the sub-departments of the requested `departmentIds` get
rows of their own, it does not roll their figures up into the parent's row. With no
`departmentIds` every department in scope gets a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from app.config import Settings
from app.learning_events.models import LearningEvent
from app.platform.models import Department, Enrollment
from app.reports.dates import DateRange
from app.reports.types.base import Column, ReportDefinition, Resolved, column, column_index
from app.reports.types.figures import fmt_count, fmt_number, fmt_rate, rate, round1
from app.reports.types.parameters import (
    DATE_RANGE_DESCRIPTION,
    DEPARTMENTS_DESCRIPTION,
    IdList,
    RangeResolved,
    ReportParameters,
    default_date_range,
)
from app.reports.types.query import (
    CLOSED_STATUSES,
    NAME_COLLATION,
    Plan,
    Row,
    Stage,
    object_ids,
    range_match,
    scope_match,
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
            "Also give a row to every sub-department of the requested departmentIds (figures are "
            "never rolled up into the parent's row)"
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
        column("departmentName", "Department", "string"),
        column("departmentCode", "Code", "string"),
        column("enrollments", "Enrollments", "integer"),
        column("completions", "Completions", "integer"),
        column("completionRate", "Completion rate", "percent"),
        column("averageScore", "Average score", "number"),
        column("activeLearners", "Active learners", "integer"),
        column("learningHours", "Learning hours", "number"),
        column("overdue", "Overdue", "integer"),
    ]
    default_sort: ClassVar[list[str]] = ["departmentName"]
    # Instructors' scope is a set of courses, not departments.
    roles = (Role.ADMIN, Role.MANAGER)
    option_labels: ClassVar[dict[str, str]] = {"includeSubDepartments": "Include sub-departments"}

    def resolve(
        self,
        params: BaseModel | Mapping[str, Any],
        scope: DataScope,
        now: datetime,
        *,
        settings: Settings | None = None,
    ) -> Resolved:
        resolved = super().resolve(params, scope, now, settings=settings)
        # The requested departments are checked against the scope as usual, but the effective
        # scope keeps the caller's whole department set: the sub-departments of a requested
        # department get rows too, and they are only known when the report runs.
        effective = replace(resolved.scope, department_ids=scope.department_ids)
        return replace(resolved, scope=effective)

    def resolve_parameters(
        self, params: DepartmentSummaryParameters, now: datetime
    ) -> DepartmentSummaryResolved:
        return DepartmentSummaryResolved(
            **self.resolved_fields(params, now),
            include_sub_departments=params.include_sub_departments,
        )

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
        in_range = range_match(resolved.date_range)
        end = resolved.date_range.end
        # Course / learner scope still applies inside each department (defence in depth; the
        # roles allowed here have department scopes).
        within = scope_match(scope, department_field=None)
        enrollments = Enrollment.get_pymongo_collection().name
        events = LearningEvent.get_pymongo_collection().name
        return [
            {"$match": self._department_match(resolved, scope)},
            {"$sort": {"name": 1, "_id": 1}},
            _sub_lookup(
                enrollments,
                "enrolled",
                [
                    {"$match": {"enrolled_at": in_range, **within}},
                    {"$group": {"_id": None, "n": {"$sum": 1}}},
                ],
            ),
            _sub_lookup(
                enrollments,
                "completed",
                [
                    {"$match": {"completed_at": in_range, **within}},
                    {"$group": {"_id": None, "n": {"$sum": 1}, "avgScore": {"$avg": "$score"}}},
                ],
            ),
            _sub_lookup(
                enrollments,
                "overdue",
                [
                    # Two stages: the indexed range first, the status filter after (one
                    # $match with a $nin makes some planners give up the index).
                    {"$match": {"due_at": {"$lt": end}, **within}},
                    {"$match": {"status": {"$nin": list(CLOSED_STATUSES)}}},
                    {"$group": {"_id": None, "n": {"$sum": 1}}},
                ],
            ),
            _sub_lookup(
                events,
                "activity",
                [
                    {"$match": {"occurred_at": in_range, **within}},
                    {
                        "$group": {
                            "_id": "$user_id",
                            "seconds": {"$sum": "$payload.durationSeconds"},
                        }
                    },
                    {
                        "$group": {
                            "_id": None,
                            "learners": {"$sum": 1},
                            "seconds": {"$sum": "$seconds"},
                        }
                    },
                ],
            ),
            {
                "$project": {
                    "name": 1,
                    "code": 1,
                    "enrolled": {"$first": "$enrolled"},
                    "completed": {"$first": "$completed"},
                    "overdue": {"$first": "$overdue"},
                    "activity": {"$first": "$activity"},
                }
            },
        ]

    async def plan(self, resolved: DepartmentSummaryResolved, scope: DataScope) -> Plan:
        return Plan(self.pipeline(resolved, scope), _row, options={"collation": NAME_COLLATION})

    def summary(self, resolved: DepartmentSummaryResolved | None) -> DepartmentSummarySummary:
        return DepartmentSummarySummary()


def _row(doc: dict[str, Any]) -> Row:
    enrolled = (doc.get("enrolled") or {}).get("n", 0)
    completed = doc.get("completed") or {}
    activity = doc.get("activity") or {}
    completions = completed.get("n", 0)
    return (
        doc.get("name"),
        doc.get("code"),
        enrolled,
        completions,
        rate(completions, enrolled),
        round1(completed.get("avgScore")),
        activity.get("learners", 0),
        round1(activity.get("seconds", 0) / 3600),
        (doc.get("overdue") or {}).get("n", 0),
    )


class DepartmentSummarySummary:
    """Departments, enrollments, completions, overall completion rate, learning hours,
    overdue."""

    def __init__(self) -> None:
        self.departments = self.enrollments = self.completions = self.overdue = 0
        self.hours = 0.0

    def add(self, batch: Sequence[Row]) -> None:
        at_enrollments, at_completions, at_hours, at_overdue = _SUMMARY_COLUMNS
        for row in batch:
            self.departments += 1
            self.enrollments += row[at_enrollments]
            self.completions += row[at_completions]
            self.hours += row[at_hours] or 0.0
            self.overdue += row[at_overdue]

    def figures(self) -> list[tuple[str, str]]:
        return [
            ("Departments", fmt_count(self.departments)),
            ("Enrollments", fmt_count(self.enrollments)),
            ("Completions", fmt_count(self.completions)),
            ("Completion rate", fmt_rate(rate(self.completions, self.enrollments))),
            ("Learning hours", fmt_number(round1(self.hours))),
            ("Overdue", fmt_count(self.overdue)),
        ]


DEPARTMENT_SUMMARY = DepartmentSummary()
_SUMMARY_COLUMNS = column_index(
    DEPARTMENT_SUMMARY.columns, "enrollments", "completions", "learningHours", "overdue"
)
