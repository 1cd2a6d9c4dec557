"""learner-progress: one row per enrollment whose `dateField` falls in the range (spec §5.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.i18n import N_
from app.lookups.codes import EnrollmentStatusCode
from app.platform.models import Enrollment
from app.reports.dates import DateRange
from app.reports.reading.learner_course import LEARNER_COURSE
from app.reports.reading.query import (
    CLOSED_STATUSES,
    Dimensions,
    FactRead,
    Plan,
    Row,
    Stage,
    range_match,
    scope_match,
    split_match,
)
from app.reports.rendering.totals import COUNT, MEAN, SUM, Total
from app.reports.types import chart_definitions
from app.reports.types.base import (
    LEARNER_COURSE_COLUMNS,
    STATUS_COLUMN,
    Column,
    ColumnType,
    Figure,
    ReportDefinition,
    column,
    column_index,
    measure,
)
from app.reports.types.figures import Mean, naive_utc, number, rate
from app.reports.types.parameters import (
    COURSES_DESCRIPTION,
    DATE_RANGE_DESCRIPTION,
    DEPARTMENTS_DESCRIPTION,
    SUB_DEPARTMENTS_DESCRIPTION,
    FilteredRangeResolved,
    IdList,
    ReportParameters,
    default_date_range,
)
from app.security import DataScope, Role

# A flag on each row, and the summary's count of the rows it marks: one definition.
OVERDUE = column(
    "overdue",
    N_("Overdue"),
    "boolean",
    N_(
        "Yes when the enrollment's due date is before the moment the report was run and it is "
        "neither completed nor withdrawn; the summary counts these enrollments"
    ),
)


class DateField(StrEnum):
    ENROLLED_AT = "enrolledAt"
    COMPLETED_AT = "completedAt"
    LAST_ACTIVITY_AT = "lastActivityAt"


STORED_DATE_FIELD = {
    DateField.ENROLLED_AT: "enrolled_at",
    DateField.COMPLETED_AT: "completed_at",
    DateField.LAST_ACTIVITY_AT: "last_activity_at",
}


class LearnerProgressParameters(ReportParameters):
    date_range: DateRange = Field(
        default_factory=default_date_range, description=DATE_RANGE_DESCRIPTION
    )
    date_field: DateField = Field(
        default=DateField.ENROLLED_AT,
        description="Which enrollment datetime must fall in the date range",
    )
    department_ids: IdList | None = Field(default=None, description=DEPARTMENTS_DESCRIPTION)
    include_sub_departments: bool = Field(default=True, description=SUB_DEPARTMENTS_DESCRIPTION)
    course_ids: IdList | None = Field(default=None, description=COURSES_DESCRIPTION)
    statuses: list[EnrollmentStatusCode] | None = Field(
        default=None,
        min_length=1,
        description="Only enrollments in these enrollment-status codes. Omitted: all",
    )
    overdue_only: bool = Field(
        default=False,
        description="Only enrollments past their due date and not completed or withdrawn",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dateRange": {"preset": "last-30-days"},
                    "dateField": "enrolledAt",
                    "timezone": "Europe/Berlin",
                    "statuses": ["enrolled", "in-progress"],
                    "overdueOnly": False,
                }
            ]
        }
    )


class LearnerProgressResolved(FilteredRangeResolved):
    date_field: DateField = DateField.ENROLLED_AT
    statuses: list[str] | None = None
    overdue_only: bool = False


class LearnerProgress(ReportDefinition[LearnerProgressParameters, LearnerProgressResolved]):
    key = "learner-progress"
    name = N_("Learner progress")
    description = N_(
        "One row per enrollment whose enrolment, completion or last-activity date falls in the "
        "range: progress, score, dates and whether it is overdue."
    )
    parameters_model = LearnerProgressParameters
    resolved_model = LearnerProgressResolved
    source = Enrollment
    columns: ClassVar[list[Column]] = [
        *LEARNER_COURSE_COLUMNS,
        STATUS_COLUMN,
        column(
            "progressPercent",
            N_("Progress"),
            "percent",
            N_(
                "How much of the course the learner has done, as the platform records it: a "
                "percentage from 0 (nothing yet) to 100 (every part done)"
            ),
        ),
        column(
            "score",
            N_("Score"),
            "number",
            N_(
                "The enrollment's score on a 0–100 scale (its final quiz's result); empty while it "
                "has none"
            ),
        ),
        column("enrolledAt", N_("Enrolled"), "datetime", N_("When the learner enrolled")),
        column("dueAt", N_("Due"), "datetime", N_("When the course is due")),
        column("completedAt", N_("Completed"), "datetime", N_("When the course was completed")),
        column(
            "timeSpentMinutes",
            N_("Time spent (min)"),
            "integer",
            N_("Time the learner has spent in the course, in minutes, as the platform records it"),
            unit="min",
        ),
        column(
            "lastActivityAt",
            N_("Last activity"),
            "datetime",
            N_("The learner's last activity in the course"),
        ),
        OVERDUE,
    ]
    default_sort: ClassVar[list[str]] = ["departmentName", "learnerName", "courseCode"]
    # One enrollment per row: the enrollments counted, progress and score averaged over the
    # enrollments that have one, minutes added up.
    totals: ClassVar[Mapping[str, Total]] = {
        "status": COUNT,
        "progressPercent": MEAN,
        "score": MEAN,
        "timeSpentMinutes": SUM,
    }
    charts = chart_definitions.LEARNER_PROGRESS
    roles = (Role.ADMIN, Role.MANAGER, Role.INSTRUCTOR, Role.LEARNER)
    # Not read when a choice of columns leaves the column out (the date field read stays).
    column_fields: ClassVar[dict[str, tuple[str, ...]]] = {
        "progressPercent": ("progress_percent",),
        "enrolledAt": ("enrolled_at",),
        "completedAt": ("completed_at",),
        "timeSpentMinutes": ("time_spent_minutes",),
        "lastActivityAt": ("last_activity_at",),
    }
    option_labels: ClassVar[dict[str, str]] = {
        "dateField": N_("Date field"),
        "statuses": N_("Statuses"),
        "overdueOnly": N_("Overdue only"),
    }
    option_values: ClassVar[dict[str, str | dict[str, str]]] = {
        "dateField": {
            "enrolledAt": N_("Enrolled"),
            "completedAt": N_("Completed"),
            "lastActivityAt": N_("Last activity"),
        },
        "statuses": "enrollment-status",
    }

    def resolve_parameters(
        self, params: LearnerProgressParameters, now: datetime
    ) -> LearnerProgressResolved:
        return LearnerProgressResolved(
            **self.resolved_fields(params, now),
            date_field=params.date_field,
            statuses=list(params.statuses) if params.statuses else None,
            overdue_only=params.overdue_only,
        )

    def _match(self, resolved: LearnerProgressResolved, scope: DataScope) -> dict[str, Any]:
        date_field = STORED_DATE_FIELD[resolved.date_field]
        match: dict[str, Any] = {
            date_field: range_match(resolved.date_range),
            **scope_match(scope, departments=resolved.department_ids, courses=resolved.course_ids),
        }
        statuses = resolved.statuses
        if resolved.overdue_only:
            match["due_at"] = {"$lt": resolved.now}
            if statuses:
                match["status"] = {"$in": [s for s in statuses if s not in CLOSED_STATUSES]}
            else:
                match["status"] = {"$nin": list(CLOSED_STATUSES)}
        elif statuses:
            match["status"] = {"$in": statuses}
        return match

    async def count_stages(
        self, resolved: LearnerProgressResolved, scope: DataScope
    ) -> list[Stage]:
        return [{"$match": self._match(resolved, scope)}]

    def facts(self, resolved: LearnerProgressResolved, scope: DataScope) -> FactRead:
        """One indexed read of the enrollments (no collation: nothing on the server needs it);
        learner, course and department joined in the worker, ordered there by department,
        learner and course names the way the name collation orders them."""
        # Datetimes stay naive UTC as decoded (the renderers' contract): no per-value tzinfo.
        now = resolved.now.astimezone(UTC).replace(tzinfo=None)
        closed = CLOSED_STATUSES
        learner_course = LEARNER_COURSE.cells  # bound once, not per row

        def to_row(doc: dict[str, Any], dims: Dimensions) -> Row:
            get = doc.get
            due_at = naive_utc(get("due_at"))
            status = get("status")
            progress, score, minutes = (
                get("progress_percent"),
                get("score"),
                get("time_spent_minutes"),
            )
            return (
                *learner_course(doc, dims),
                status,
                progress if progress.__class__ is float else number(progress),
                score if score.__class__ is float else number(score),
                naive_utc(get("enrolled_at")),
                due_at,
                naive_utc(get("completed_at")),
                int(minutes) if isinstance(minutes, int | float) else None,
                naive_utc(get("last_activity_at")),
                due_at is not None and due_at < now and status not in closed,
            )

        match = self._match(resolved, scope)
        reads, keep = split_match(match, self._index(resolved, match), naive=True)
        return FactRead(
            reads=reads,
            keep=keep,
            projection=_FACT_FIELDS,
            joins=LEARNER_COURSE.joins,
            to_row=to_row,
            order=LEARNER_COURSE.order,
            slice_field=STORED_DATE_FIELD[resolved.date_field],
            naive_datetimes=True,
        )

    def _index(self, resolved: LearnerProgressResolved, match: dict[str, Any]) -> tuple[str, ...]:
        """The fields of the index the read walks: a learner's own enrollments, else the
        departments' or courses' ranges of the date field when filtered and so indexed, else
        the date field's range."""
        date_field = STORED_DATE_FIELD[resolved.date_field]
        if "user_id" in match:
            return ("user_id",)
        if "department_id" in match and resolved.date_field != DateField.LAST_ACTIVITY_AT:
            return ("department_id", date_field)
        if "course_id" in match and resolved.date_field == DateField.ENROLLED_AT:
            return ("course_id", date_field)
        return (date_field,)

    async def plan(self, resolved: LearnerProgressResolved, scope: DataScope) -> Plan:
        return Plan.of_facts(self.facts(resolved, scope))

    def summary(self, resolved: LearnerProgressResolved | None) -> LearnerProgressSummary:
        return LearnerProgressSummary()


class LearnerProgressSummary:
    """Enrollments, withdrawn, completed, the completion rate (completed ÷ (enrollments −
    withdrawn)), the average score of the completed ones, overdue."""

    ENROLLMENTS = measure(
        "enrollments",
        N_("Enrollments"),
        "integer",
        N_(
            "The report's rows: enrollments whose chosen date falls in the range, after the filters"
        ),
    )
    WITHDRAWN = measure(
        "withdrawn",
        N_("Withdrawn"),
        "integer",
        N_("Of the enrollments, those with the status Withdrawn"),
    )
    COMPLETED = measure(
        "completed",
        N_("Completed"),
        "integer",
        N_("Of the enrollments, those with the status Completed"),
    )
    COMPLETION_RATE = measure(
        "completionRate",
        N_("Completion rate"),
        "percent",
        N_(
            "Completed ÷ (enrollments − withdrawn) over the report's rows, as a percentage with 1 "
            "decimal; empty when every enrollment is withdrawn"
        ),
    )
    AVERAGE_SCORE = measure(
        "averageScore",
        N_("Average score (completed)"),
        "number",
        N_(
            "Mean score (0–100 scale) of the completed enrollments that have one, 1 decimal, half "
            "up; empty when none has"
        ),
    )

    def __init__(self) -> None:
        self.enrollments = self.completed = self.withdrawn = self.overdue = 0
        self.score = Mean()

    def add(self, batch: Sequence[Row]) -> None:
        at_status, at_score, at_overdue = _SUMMARY_COLUMNS
        for row in batch:
            status, score, overdue = row[at_status], row[at_score], row[at_overdue]
            self.enrollments += 1
            if status == "completed":
                self.completed += 1
                self.score.add(score)
            elif status == "withdrawn":
                self.withdrawn += 1
            if overdue:
                self.overdue += 1

    def figures(self) -> list[Figure]:
        return [
            self.ENROLLMENTS.figure(self.enrollments),
            self.WITHDRAWN.figure(self.withdrawn),
            self.COMPLETED.figure(self.completed),
            self.COMPLETION_RATE.figure(rate(self.completed, self.enrollments - self.withdrawn)),
            self.AVERAGE_SCORE.figure(self.score.value()),
            OVERDUE.figure(self.overdue, ColumnType.INTEGER),
        ]


_FACT_FIELDS = dict.fromkeys(
    (
        "user_id",
        "course_id",
        "department_id",
        "status",
        "progress_percent",
        "score",
        "enrolled_at",
        "due_at",
        "completed_at",
        "time_spent_minutes",
        "last_activity_at",
    ),
    1,
)
LEARNER_PROGRESS = LearnerProgress()
_SUMMARY_COLUMNS = column_index(LEARNER_PROGRESS.columns, "status", "score", "overdue")
