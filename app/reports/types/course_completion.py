"""course-completion: one row per course with at least one enrollment enrolled in range."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.i18n import N_
from app.lookups.codes import CourseCategoryCode
from app.platform.models import Enrollment
from app.reports.dates import DateRange
from app.reports.reading.query import (
    COURSES,
    Join,
    Plan,
    Row,
    Stage,
    grouped,
    range_match,
    scope_match,
    split_match,
)
from app.reports.rendering.totals import SUM, Total, rate_of
from app.reports.types import chart_definitions
from app.reports.types.base import Column, Figure, ReportDefinition, column, column_index, measure
from app.reports.types.course_figures import CourseFigures
from app.reports.types.figures import is_numeric, rate, scaled
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
from app.security import DataScope

MS_PER_DAY = 86_400_000


def _count_status(status: str) -> dict[str, Any]:
    return {"$sum": {"$cond": [{"$eq": ["$status", status]}, 1, 0]}}


def _when_completed(expression: Any) -> dict[str, Any]:
    """`expression` for completed enrollments, null otherwise (so `$sum` skips the rest)."""
    return {"$cond": [{"$eq": ["$status", "completed"]}, expression, None]}


def _completion_ms() -> dict[str, Any]:
    """Milliseconds from enrollment to completion (null without a completion datetime)."""
    return {
        "$cond": [
            {"$eq": [{"$type": "$completed_at"}, "date"]},
            {"$subtract": ["$completed_at", "$enrolled_at"]},
            None,
        ]
    }


COURSE_CATEGORY = "course-category"
# The columns the summary also totals: one definition for the row and the total.
ENROLLED = column(
    "enrolled",
    N_("Enrolled"),
    "integer",
    N_(
        "Enrollments in the course whose enrolment date is in the range (the cohort), after the "
        "filters; the summary adds up every course"
    ),
)
COMPLETED = column(
    "completed",
    N_("Completed"),
    "integer",
    N_("Of the cohort, enrollments with the status Completed; the summary adds up every course"),
)
WITHDRAWN = column(
    "withdrawn",
    N_("Withdrawn"),
    "integer",
    N_("Of the cohort, enrollments with the status Withdrawn; the summary adds up every course"),
)
COMPLETION_RATE = column(
    "completionRate",
    N_("Completion rate"),
    "percent",
    N_(
        "Completed ÷ (enrolled − withdrawn) over the cohort (the summary's: over every course's "
        "cohort together), as a percentage with 1 decimal; empty when the whole cohort withdrew"
    ),
)


class CourseCompletionParameters(ReportParameters):
    date_range: DateRange = Field(
        default_factory=default_date_range,
        description=DATE_RANGE_DESCRIPTION + "; applies to the enrollment date",
    )
    department_ids: IdList | None = Field(
        default=None, description=DEPARTMENTS_DESCRIPTION + " (the enrollment's department)"
    )
    include_sub_departments: bool = Field(default=True, description=SUB_DEPARTMENTS_DESCRIPTION)
    course_ids: IdList | None = Field(default=None, description=COURSES_DESCRIPTION)
    category: CourseCategoryCode | None = Field(
        default=None, description="Only courses of this course-category code"
    )
    mandatory_only: bool = Field(default=False, description="Only mandatory courses")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dateRange": {"preset": "this-quarter"},
                    "timezone": "America/New_York",
                    "mandatoryOnly": True,
                }
            ]
        }
    )


class CourseCompletionResolved(FilteredRangeResolved):
    category: str | None = None
    mandatory_only: bool = False


class CourseCompletion(ReportDefinition[CourseCompletionParameters, CourseCompletionResolved]):
    key = "course-completion"
    name = N_("Course completion")
    description = N_(
        "One row per course with enrollments in the range: counts by status, completion rate, "
        "average score and average days to complete."
    )
    parameters_model = CourseCompletionParameters
    resolved_model = CourseCompletionResolved
    source = Enrollment
    columns: ClassVar[list[Column]] = [
        column("courseCode", N_("Course code"), "string", N_("The course's code")),
        column("courseTitle", N_("Course"), "string", N_("The course's title")),
        column(
            "category",
            N_("Category"),
            "string",
            N_("The subject area the course belongs to (Compliance, Engineering, Sales, …)"),
            lookup=COURSE_CATEGORY,
        ),
        column(
            "isMandatory",
            N_("Mandatory"),
            "boolean",
            N_(
                "Yes when learners must complete the course (its enrollments are tracked in the "
                "Compliance status report)"
            ),
        ),
        ENROLLED,
        column(
            "inProgress",
            N_("In progress"),
            "integer",
            N_("Of the cohort, enrollments with the status In progress"),
        ),
        COMPLETED,
        column(
            "failed",
            N_("Failed"),
            "integer",
            N_("Of the cohort, enrollments with the status Failed"),
        ),
        WITHDRAWN,
        COMPLETION_RATE,
        column(
            "averageScore",
            N_("Average score"),
            "number",
            N_(
                "Mean score (0–100 scale) of the cohort's completed enrollments that have one, 1 "
                "decimal, half up"
            ),
        ),
        column(
            "averageDaysToComplete",
            N_("Average days to complete"),
            "number",
            N_(
                "Mean of completion date − enrolment date, in days with 1 decimal, over the cohort's "
                "completed enrollments"
            ),
            unit="d",
        ),
    ]
    # The counts add up; the rate is the rate of the totals. The averages stay empty: a row
    # does not carry how many scores or completion times its mean is over.
    totals: ClassVar[Mapping[str, Total]] = {
        **dict.fromkeys(("enrolled", "inProgress", "completed", "failed", "withdrawn"), SUM),
        "completionRate": rate_of("completed", "enrolled", "withdrawn"),
    }
    default_sort: ClassVar[list[str]] = ["courseCode"]
    group_columns = ("courseCode",)
    charts = chart_definitions.COURSE_COMPLETION
    option_labels: ClassVar[dict[str, str]] = {
        "category": N_("Category"),
        "mandatoryOnly": N_("Mandatory only"),
    }
    option_values: ClassVar[dict[str, str | dict[str, str]]] = {"category": COURSE_CATEGORY}

    def resolve_parameters(
        self, params: CourseCompletionParameters, now: datetime
    ) -> CourseCompletionResolved:
        return CourseCompletionResolved(
            **self.resolved_fields(params, now),
            category=params.category,
            mandatory_only=params.mandatory_only,
        )

    def _pipeline(self, resolved: CourseCompletionResolved, scope: DataScope) -> list[Stage]:
        course_match: dict[str, Any] = {}
        if resolved.category:
            course_match["course.category"] = resolved.category
        if resolved.mandatory_only:
            course_match["course.is_mandatory"] = True
        within = scope_match(
            scope, departments=resolved.department_ids, courses=resolved.course_ids
        )
        return [
            {"$match": {"enrolled_at": range_match(resolved.date_range), **within}},
            {
                "$group": {
                    "_id": "$course_id",
                    "enrolled": {"$sum": 1},
                    "inProgress": _count_status("in-progress"),
                    "completed": _count_status("completed"),
                    "failed": _count_status("failed"),
                    "withdrawn": _count_status("withdrawn"),
                    # Exact averages: integer sums (scores in millionths, days in ms) divided
                    # once when the row is built.
                    "scoreTotal": {"$sum": _when_completed(scaled("$score"))},
                    "scored": {"$sum": _when_completed(is_numeric("$score"))},
                    "msTotal": {"$sum": _when_completed(_completion_ms())},
                    "timed": {"$sum": _when_completed(is_numeric(_completion_ms()))},
                }
            },
            {
                "$lookup": {
                    "from": COURSES,
                    "localField": "_id",
                    "foreignField": "_id",
                    "pipeline": [
                        {"$project": {"code": 1, "title": 1, "category": 1, "is_mandatory": 1}}
                    ],
                    "as": "course",
                }
            },
            {"$unwind": {"path": "$course", "preserveNullAndEmptyArrays": True}},
            *([{"$match": course_match}] if course_match else []),
        ]

    async def count_stages(
        self, resolved: CourseCompletionResolved, scope: DataScope
    ) -> list[Stage]:
        return self._pipeline(resolved, scope)

    async def plan(self, resolved: CourseCompletionResolved, scope: DataScope) -> Plan:
        """One indexed read of the cohort's enrollments (a few fields each), added up per course
        in the worker (`CourseFigures`): the same figures as `_pipeline`, which still counts the
        rows, without the database doing the grouping."""
        match = self._pipeline(resolved, scope)[0]["$match"]
        reads, keep = split_match(match, _index(match), naive=True)
        wanted = {
            k: v
            for k, v in (("category", resolved.category), ("is_mandatory", resolved.mandatory_only))
            if v
        }
        return Plan.of_facts(
            grouped(reads, keep, _FACT_FIELDS, (_COURSE,), _figures(wanted), "enrolled_at")
        )

    def summary(self, resolved: CourseCompletionResolved | None) -> CourseCompletionSummary:
        return CourseCompletionSummary()


_FACT_FIELDS = dict.fromkeys(("course_id", "status", "score", "enrolled_at", "completed_at"), 1)
_COURSE = Join("course_id", COURSES, ("code", "title", "category", "is_mandatory"))


def _figures(wanted: dict[str, Any]) -> Callable[[], CourseFigures]:
    return lambda: CourseFigures(wanted)


def _index(match: dict[str, Any]) -> tuple[str, ...]:
    """The index the cohort's read walks: a learner's enrollments, else the departments' or
    courses' enrollment-date ranges when filtered by them, else the enrollment-date range."""
    if "user_id" in match:
        return ("user_id",)
    if "department_id" in match:
        return ("department_id", "enrolled_at")
    if "course_id" in match:
        return ("course_id", "enrolled_at")
    return ("enrolled_at",)


class CourseCompletionSummary:
    """Courses, enrolled, withdrawn, completed and the completion rate over every course's
    cohort together."""

    COURSES = measure(
        "courses",
        N_("Courses"),
        "integer",
        N_("The report's rows: courses with at least one enrollment enrolled in the range"),
    )

    def __init__(self) -> None:
        self.courses = self.enrolled = self.completed = self.withdrawn = 0

    def add(self, batch: Sequence[Row]) -> None:
        at_enrolled, at_completed, at_withdrawn = _SUMMARY_COLUMNS
        for row in batch:
            self.courses += 1
            self.enrolled += row[at_enrolled]
            self.completed += row[at_completed]
            self.withdrawn += row[at_withdrawn]

    def figures(self) -> list[Figure]:
        return [
            self.COURSES.figure(self.courses),
            ENROLLED.figure(self.enrolled),
            WITHDRAWN.figure(self.withdrawn),
            COMPLETED.figure(self.completed),
            COMPLETION_RATE.figure(rate(self.completed, self.enrolled - self.withdrawn)),
        ]


COURSE_COMPLETION = CourseCompletion()
_SUMMARY_COLUMNS = column_index(COURSE_COMPLETION.columns, "enrolled", "completed", "withdrawn")
