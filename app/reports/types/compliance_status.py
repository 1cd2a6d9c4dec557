"""compliance-status: one row per enrollment in a mandatory course, as of a local date.

"As of `asOfDate`" means at the end of that day in the report's timezone: enrollments made
after it are left out, and a course completed after it counts as not completed yet. States,
with D = asOfDate and N = dueWithinDays:

- compliant: completed (on or before D) on or before dueAt, or with no dueAt
- completed-late: completed (on or before D) after dueAt
- overdue: not completed and dueAt before D (before D 00:00 local)
- due-soon: not completed and dueAt on D … D + N (local days, both included)
- not-due: not completed, dueAt later or none

Withdrawn enrollments are left out. The compliance rate (spec §5.2) is compliant ÷ (compliant +
completed-late + overdue): due-soon and not-due enrollments are not judged yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.common.time import zone
from app.i18n import N_
from app.platform.models import Course, Enrollment
from app.reports.dates import (
    BoundedDate,
    StoredModel,
    UtcDateTime,
    local_midnight,
    local_today,
)
from app.reports.reading.learner_course import LEARNER_COURSE
from app.reports.reading.query import (
    Dimensions,
    FactRead,
    Plan,
    Row,
    Stage,
    effective_ids,
    object_ids,
    scope_match,
    split_match,
)
from app.reports.rendering.totals import COUNT, Total
from app.reports.types import chart_definitions
from app.reports.types.base import (
    LEARNER_COURSE_COLUMNS,
    STATUS_COLUMN,
    Column,
    Figure,
    ReportDefinition,
    column,
    column_index,
    measure,
)
from app.reports.types.figures import rate, utc
from app.reports.types.parameters import (
    COURSES_DESCRIPTION,
    DEPARTMENTS_DESCRIPTION,
    SUB_DEPARTMENTS_DESCRIPTION,
    IdList,
    ReportParameters,
    ResolvedParameters,
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
    name = N_("Compliance status")
    description = N_(
        "One row per enrollment in a mandatory course with its compliance state as of a date: "
        "compliant, completed late, overdue, due soon or not due."
    )
    parameters_model = ComplianceStatusParameters
    resolved_model = ComplianceStatusResolved
    source = Enrollment
    columns: ClassVar[list[Column]] = [
        *LEARNER_COURSE_COLUMNS,
        column("dueAt", N_("Due"), "datetime", N_("When the course is due")),
        STATUS_COLUMN,
        column("completedAt", N_("Completed"), "datetime", N_("When the course was completed")),
        column(
            "complianceState",
            N_("Compliance"),
            "string",
            N_(
                "Where the enrollment stands as of the date: Compliant (completed on or before its "
                "due date, or with no due date), Completed late (completed after its due date), "
                "Overdue (not completed, due before the date), Due soon (not completed, due on the "
                "date or within the days set by Due soon within), Not due (not completed, due later or "
                "never)"
            ),
            lookup="compliance-state",
        ),
    ]
    default_sort: ClassVar[list[str]] = ["departmentName", "learnerName", "courseCode"]
    # One enrollment per row: the totals row counts them (the states and the compliance rate
    # are the summary's figures).
    totals: ClassVar[Mapping[str, Total]] = {"complianceState": COUNT}
    charts = chart_definitions.COMPLIANCE_STATUS
    option_labels: ClassVar[dict[str, str]] = {
        "asOfDate": N_("As of"),
        "dueWithinDays": N_("Due soon within (days)"),
        "states": N_("States"),
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

    async def _match(self, resolved: ComplianceStatusResolved, scope: DataScope) -> dict[str, Any]:
        return {
            **scope_match(scope, departments=resolved.department_ids, course_field=None),
            "course_id": {"$in": await self._mandatory_course_ids(resolved, scope)},
            "status": {"$ne": "withdrawn"},
            "enrolled_at": {"$lt": resolved.as_of.day_end},
        }

    async def count_stages(
        self, resolved: ComplianceStatusResolved, scope: DataScope
    ) -> list[Stage]:
        return [{"$match": await self._match(resolved, scope)}]

    async def plan(self, resolved: ComplianceStatusResolved, scope: DataScope) -> Plan:
        """One indexed read per mandatory course (course_id, enrolled_at); the state is
        computed and filtered here, learner / course / department joined and the rows ordered
        by their names in the worker."""
        state_of = _state_function(resolved.as_of)
        wanted = {s.value for s in resolved.states} if resolved.states else None
        reads, rest = split_match(await self._match(resolved, scope), ("course_id", "enrolled_at"))

        def keep(doc: dict[str, Any]) -> bool:
            return (rest is None or rest(doc)) and (wanted is None or state_of(doc) in wanted)

        learner_course = LEARNER_COURSE.cells  # bound once, not per row

        def to_row(doc: dict[str, Any], dims: Dimensions) -> Row:
            return (
                *learner_course(doc, dims),
                utc(doc.get("due_at")),
                doc.get("status"),
                utc(doc.get("completed_at")),
                state_of(doc),
            )

        return Plan.of_facts(
            FactRead(
                reads=reads,
                keep=keep if rest is not None or wanted is not None else None,
                projection=_FACT_FIELDS,
                joins=LEARNER_COURSE.joins,
                to_row=to_row,
                order=LEARNER_COURSE.order,
            )
        )

    def summary(self, resolved: ComplianceStatusResolved | None) -> ComplianceSummary:
        return ComplianceSummary()


def _state_function(as_of: AsOf) -> Callable[[dict[str, Any]], str]:
    """An enrollment's compliance state as of the date (the module docstring's rules): a date
    that is not stored as a datetime counts as unset, as on the server."""
    day_start, day_end, due_soon_end = as_of.day_start, as_of.day_end, as_of.due_soon_end

    def state_of(doc: dict[str, Any]) -> str:
        completed_at, due_at = _instant(doc.get("completed_at")), _instant(doc.get("due_at"))
        done = doc.get("status") == "completed" and (completed_at is None or completed_at < day_end)
        if done:
            if due_at is not None and completed_at is not None and completed_at > due_at:
                return ComplianceState.COMPLETED_LATE.value
            return ComplianceState.COMPLIANT.value
        if due_at is not None and due_at < day_start:
            return ComplianceState.OVERDUE.value
        if due_at is not None and due_at < due_soon_end:
            return ComplianceState.DUE_SOON.value
        return ComplianceState.NOT_DUE.value

    return state_of


def _instant(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


_FACT_FIELDS = dict.fromkeys(
    ("user_id", "course_id", "department_id", "due_at", "status", "completed_at"), 1
)


class ComplianceSummary:
    """Enrollments, the count of each state and the compliance rate (spec §5.2): compliant ÷
    (compliant + completed late + overdue), over the enrollments already judged as of the
    date; due-soon and not-due ones are not judged yet and count in neither term."""

    ENROLLMENTS = measure(
        "enrollments",
        N_("Enrollments"),
        "integer",
        N_(
            "The report's rows: enrollments in mandatory courses, withdrawn ones left out, after "
            "the filters"
        ),
    )
    STATES = {
        ComplianceState.COMPLIANT: measure(
            "compliant",
            N_("Compliant"),
            "integer",
            N_(
                "Enrollments completed on or before their due date (or with no due date) as of the "
                "date"
            ),
        ),
        ComplianceState.COMPLETED_LATE: measure(
            "completedLate",
            N_("Completed late"),
            "integer",
            N_("Enrollments completed after their due date, as of the date"),
        ),
        ComplianceState.OVERDUE: measure(
            "overdue",
            N_("Overdue"),
            "integer",
            N_("Enrollments not completed as of the date whose due date is before it"),
        ),
        ComplianceState.DUE_SOON: measure(
            "dueSoon",
            N_("Due soon"),
            "integer",
            N_(
                "Enrollments not completed, due on the date or within the days set by Due soon within "
                "(Parameters)"
            ),
        ),
        ComplianceState.NOT_DUE: measure(
            "notDue",
            N_("Not due"),
            "integer",
            N_(
                "Enrollments not completed, due after the days set by Due soon within, or with no due "
                "date"
            ),
        ),
    }
    RATE = measure(
        "complianceRate",
        N_("Compliance rate"),
        "percent",
        N_(
            "Compliant ÷ (compliant + completed late + overdue): of the enrollments already judged "
            "as of the date (completed, or past their due date), the share done on time, as a "
            "percentage with 1 decimal; Due soon and Not due enrollments are left out of both "
            "terms; empty when none is judged"
        ),
    )
    JUDGED = (ComplianceState.COMPLIANT, ComplianceState.COMPLETED_LATE, ComplianceState.OVERDUE)

    def __init__(self) -> None:
        self.total = 0
        self.states = dict.fromkeys((s.value for s in ComplianceState), 0)

    def add(self, batch: Sequence[Row]) -> None:
        (at_state,) = _SUMMARY_COLUMNS
        for row in batch:
            self.total += 1
            state = row[at_state]
            self.states[state] = self.states.get(state, 0) + 1

    def figures(self) -> list[Figure]:
        judged = sum(self.states[s.value] for s in self.JUDGED)
        return [
            self.ENROLLMENTS.figure(self.total),
            *(m.figure(self.states[s.value]) for s, m in self.STATES.items()),
            self.RATE.figure(rate(self.states[ComplianceState.COMPLIANT.value], judged)),
        ]


COMPLIANCE_STATUS = ComplianceStatus()
_SUMMARY_COLUMNS = column_index(COMPLIANCE_STATUS.columns, "complianceState")
