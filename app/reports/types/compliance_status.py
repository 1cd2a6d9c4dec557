"""compliance-status: one row per enrollment in a mandatory course, as of a local date.

"As of `asOfDate`" means at the end of that day in the report's timezone: enrollments made
after it are left out, and a course completed after it counts as not completed yet. States,
with D = asOfDate and N = dueWithinDays:

- compliant: completed (on or before D) on or before dueAt, or with no dueAt
- completed-late: completed (on or before D) after dueAt
- overdue: not completed and dueAt before D (before D 00:00 local)
- due-soon: not completed and dueAt on D … D + N (local days, both included)
- not-due: not completed, dueAt later or none

Withdrawn enrollments are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.common.time import zone
from app.platform.models import Course, Enrollment
from app.reports.dates import (
    BoundedDate,
    StoredModel,
    UtcDateTime,
    local_midnight,
    local_today,
)
from app.reports.types.base import (
    LEARNER_COURSE_COLUMNS,
    Column,
    ReportDefinition,
    column,
    column_index,
)
from app.reports.types.figures import fmt_count, fmt_rate, rate, utc
from app.reports.types.parameters import (
    COURSES_DESCRIPTION,
    DEPARTMENTS_DESCRIPTION,
    SUB_DEPARTMENTS_DESCRIPTION,
    IdList,
    ReportParameters,
    ResolvedParameters,
)
from app.reports.types.query import (
    COURSES,
    DEPARTMENTS,
    NAME_COLLATION,
    USERS,
    Plan,
    Row,
    Stage,
    effective_ids,
    lookup_one,
    object_ids,
    scope_match,
)
from app.security import DataScope


class ComplianceState(StrEnum):
    COMPLIANT = "compliant"
    COMPLETED_LATE = "completed-late"
    OVERDUE = "overdue"
    DUE_SOON = "due-soon"
    NOT_DUE = "not-due"


class ComplianceStatusParameters(ReportParameters):
    as_of_date: BoundedDate | None = Field(
        default=None,
        description="Local date the status is computed for (at its end). Omitted: today in the "
        "report's timezone, fixed when the report is requested",
    )
    due_within_days: int = Field(
        default=30,
        ge=0,
        le=3660,
        description="Not-completed enrollments due on asOfDate or within this many days after it "
        "are `due-soon`",
    )
    states: list[ComplianceState] | None = Field(
        default=None, min_length=1, description="Only these compliance states. Omitted: all"
    )
    department_ids: IdList | None = Field(default=None, description=DEPARTMENTS_DESCRIPTION)
    include_sub_departments: bool = Field(default=True, description=SUB_DEPARTMENTS_DESCRIPTION)
    course_ids: IdList | None = Field(
        default=None, description=COURSES_DESCRIPTION + " (non-mandatory ones give no rows)"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "timezone": "Europe/Berlin",
                    "dueWithinDays": 14,
                    "states": ["overdue", "due-soon"],
                }
            ]
        }
    )


def _is_set(field: str) -> dict[str, Any]:
    return {"$eq": [{"$type": field}, "date"]}


class AsOf(StoredModel):
    """The instants `asOfDate` stands for, in UTC: its start, its end, and the end of the
    due-soon window."""

    day_start: UtcDateTime
    day_end: UtcDateTime
    due_soon_end: UtcDateTime


class ComplianceStatusResolved(ResolvedParameters):
    department_ids: list[str] | None = None
    include_sub_departments: bool = True
    course_ids: list[str] | None = None
    as_of_date: date
    due_within_days: int = 30
    states: list[ComplianceState] | None = None
    as_of: AsOf


class ComplianceStatus(ReportDefinition[ComplianceStatusParameters, ComplianceStatusResolved]):
    key = "compliance-status"
    name = "Compliance status"
    description = (
        "One row per enrollment in a mandatory course with its compliance state as of a date: "
        "compliant, completed late, overdue, due soon or not due."
    )
    parameters_model = ComplianceStatusParameters
    resolved_model = ComplianceStatusResolved
    source = Enrollment
    columns: ClassVar[list[Column]] = [
        *LEARNER_COURSE_COLUMNS,
        column("dueAt", "Due", "datetime", "When the course is due"),
        column("status", "Status", "string", "The enrollment's status", lookup="enrollment-status"),
        column("completedAt", "Completed", "datetime", "When the course was completed"),
        column(
            "complianceState",
            "Compliance",
            "string",
            "As of the date: Compliant (completed by the due date, or no due date), Completed late, Overdue (not completed, due before the date), Due soon (due within the window), Not due",
            lookup="compliance-state",
        ),
    ]
    default_sort: ClassVar[list[str]] = ["departmentName", "learnerName", "courseCode"]
    option_labels: ClassVar[dict[str, str]] = {
        "asOfDate": "As of",
        "dueWithinDays": "Due soon within (days)",
        "states": "States",
    }
    option_values: ClassVar[dict[str, str | dict[str, str]]] = {"states": "compliance-state"}

    def resolve_parameters(
        self, params: ComplianceStatusParameters, now: datetime
    ) -> ComplianceStatusResolved:
        tz = zone(params.timezone)
        as_of = params.as_of_date or local_today(now, tz)
        days = params.due_within_days
        return ComplianceStatusResolved(
            **self.resolved_fields(params, now),
            as_of_date=as_of,
            due_within_days=days,
            states=list(params.states) if params.states else None,
            as_of=AsOf(
                day_start=local_midnight(as_of, tz),
                day_end=local_midnight(as_of + timedelta(days=1), tz),
                due_soon_end=local_midnight(as_of + timedelta(days=days + 1), tz),
            ),
        )

    async def _mandatory_course_ids(
        self, resolved: ComplianceStatusResolved, scope: DataScope
    ) -> list[Any]:
        """The mandatory courses in the filter and scope (a small, indexed read)."""
        query: dict[str, Any] = {"is_mandatory": True}
        courses = effective_ids(resolved.course_ids, scope.course_ids)
        if courses is not None:
            query["_id"] = {"$in": object_ids(courses)}
        cursor = Course.get_pymongo_collection().find(query, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def _stages(self, resolved: ComplianceStatusResolved, scope: DataScope) -> list[Stage]:
        as_of = resolved.as_of
        day_start, day_end, due_soon_end = as_of.day_start, as_of.day_end, as_of.due_soon_end
        match: dict[str, Any] = {
            **scope_match(scope, departments=resolved.department_ids, course_field=None),
            "course_id": {"$in": await self._mandatory_course_ids(resolved, scope)},
            "status": {"$ne": "withdrawn"},
            "enrolled_at": {"$lt": day_end},
        }
        done = {
            "$and": [
                {"$eq": ["$status", "completed"]},
                {
                    "$or": [
                        {"$not": [_is_set("$completed_at")]},
                        {"$lt": ["$completed_at", day_end]},
                    ]
                },
            ]
        }
        due = _is_set("$due_at")
        state = {
            "$switch": {
                "branches": [
                    {
                        "case": {
                            "$and": [
                                "$$done",
                                due,
                                _is_set("$completed_at"),
                                {"$gt": ["$completed_at", "$due_at"]},
                            ]
                        },
                        "then": ComplianceState.COMPLETED_LATE.value,
                    },
                    {"case": "$$done", "then": ComplianceState.COMPLIANT.value},
                    {
                        "case": {"$and": [due, {"$lt": ["$due_at", day_start]}]},
                        "then": ComplianceState.OVERDUE.value,
                    },
                    {
                        "case": {"$and": [due, {"$lt": ["$due_at", due_soon_end]}]},
                        "then": ComplianceState.DUE_SOON.value,
                    },
                ],
                "default": ComplianceState.NOT_DUE.value,
            }
        }
        stages: list[dict[str, Any]] = [
            {"$match": match},
            {"$set": {"complianceState": {"$let": {"vars": {"done": done}, "in": state}}}},
        ]
        if resolved.states:
            states = [s.value for s in resolved.states]
            stages.append({"$match": {"complianceState": {"$in": states}}})
        return stages

    async def count_stages(
        self, resolved: ComplianceStatusResolved, scope: DataScope
    ) -> list[Stage]:
        return await self._stages(resolved, scope)

    async def pipeline(self, resolved: ComplianceStatusResolved, scope: DataScope) -> list[Stage]:
        return [
            *await self._stages(resolved, scope),
            *lookup_one(USERS, "user_id", "user", {"name": 1, "email": 1}),
            *lookup_one(COURSES, "course_id", "course", {"code": 1, "title": 1}),
            *lookup_one(DEPARTMENTS, "department_id", "department", {"name": 1}),
            {
                "$project": {
                    "learnerName": "$user.name",
                    "learnerEmail": "$user.email",
                    "departmentName": "$department.name",
                    "courseCode": "$course.code",
                    "courseTitle": "$course.title",
                    "due_at": 1,
                    "status": 1,
                    "completed_at": 1,
                    "complianceState": 1,
                }
            },
            {"$sort": {"departmentName": 1, "learnerName": 1, "courseCode": 1, "_id": 1}},
        ]

    async def plan(self, resolved: ComplianceStatusResolved, scope: DataScope) -> Plan:
        return Plan(
            await self.pipeline(resolved, scope),
            _row,
            options={
                "collation": NAME_COLLATION,
                # Keeps the $match on its index under the name collation (see learner_progress).
                "hint": {"course_id": 1, "enrolled_at": 1},
            },
        )

    def summary(self, resolved: ComplianceStatusResolved | None) -> ComplianceSummary:
        return ComplianceSummary()


def _row(doc: dict[str, Any]) -> Row:
    return (
        doc.get("learnerName"),
        doc.get("learnerEmail"),
        doc.get("departmentName"),
        doc.get("courseCode"),
        doc.get("courseTitle"),
        utc(doc.get("due_at")),
        doc.get("status"),
        utc(doc.get("completed_at")),
        doc.get("complianceState"),
    )


class ComplianceSummary:
    """Enrollments, the count of each state and the compliance rate (compliant ÷ all)."""

    def __init__(self) -> None:
        self.total = 0
        self.states = dict.fromkeys((s.value for s in ComplianceState), 0)

    def add(self, batch: Sequence[Row]) -> None:
        (at_state,) = _SUMMARY_COLUMNS
        for row in batch:
            self.total += 1
            state = row[at_state]
            self.states[state] = self.states.get(state, 0) + 1

    def figures(self) -> list[tuple[str, str]]:
        labels = {
            ComplianceState.COMPLIANT: "Compliant",
            ComplianceState.COMPLETED_LATE: "Completed late",
            ComplianceState.OVERDUE: "Overdue",
            ComplianceState.DUE_SOON: "Due soon",
            ComplianceState.NOT_DUE: "Not due",
        }
        return [
            ("Enrollments", fmt_count(self.total)),
            *((labels[s], fmt_count(self.states.get(s.value, 0))) for s in ComplianceState),
            ("Compliance rate", fmt_rate(rate(self.states["compliant"], self.total))),
        ]


COMPLIANCE_STATUS = ComplianceStatus()
_SUMMARY_COLUMNS = column_index(COMPLIANCE_STATUS.columns, "complianceState")
