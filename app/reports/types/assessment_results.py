"""assessment-results: one row per `quiz-submitted` event in range, or one per course with
`groupBy=course`.

`passed` is `payload.score ≥ the course's passingScore`; a submission without a numeric score
(or without a known course) has an empty `passed` and matches neither `result` filter. Grouped:
`passRate` is over the attempts that could be judged (empty when none could: a course without
a passing score) and `averageScore`, `minScore`, `maxScore` over the numeric scores. The quiz
cell is the quiz's id carrying its title from the course's `quizzes` (`quiz_cell`): CSV prints
the id, PDF and Excel the title.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.i18n import N_
from app.learning_events.models import LearningEvent
from app.reports.dates import DateRange
from app.reports.reading.learner_course import LearnerCourse
from app.reports.reading.query import (
    COURSES,
    Dimensions,
    FactRead,
    Plan,
    Row,
    Stage,
    effective_ids,
    lookup_one,
    range_match,
    scope_match,
    split_match,
)
from app.reports.rendering.totals import Total
from app.reports.types import chart_definitions
from app.reports.types.assessment_figures import (
    COURSE_COLUMNS,
    COURSE_TOTALS,
    DETAIL_COLUMNS,
    DETAIL_TOTALS,
    AssessmentSummary,
    quiz_cell,
)
from app.reports.types.base import (
    Column,
    ReportDefinition,
)
from app.reports.types.figures import (
    exact_average,
    is_numeric,
    number,
    numeric,
    rate,
    scaled,
    utc,
)
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
from app.reports.types.passing import judge, passed_by_course, passing_scores
from app.security import DataScope

SUBMITTED = "quiz-submitted"


class GroupBy(StrEnum):
    NONE = "none"
    COURSE = "course"


class Result(StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class AssessmentResultsParameters(ReportParameters):
    date_range: DateRange = Field(
        default_factory=default_date_range,
        description=DATE_RANGE_DESCRIPTION + "; applies to the submission time",
    )
    department_ids: IdList | None = Field(default=None, description=DEPARTMENTS_DESCRIPTION)
    include_sub_departments: bool = Field(default=True, description=SUB_DEPARTMENTS_DESCRIPTION)
    course_ids: IdList | None = Field(default=None, description=COURSES_DESCRIPTION)
    group_by: GroupBy = Field(
        default=GroupBy.NONE,
        description="`none`: one row per quiz submission; `course`: one row per course",
    )
    result: Result | None = Field(
        default=None,
        description="Only submissions that passed (score ≥ the course's passing score) or failed",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"dateRange": {"preset": "last-7-days"}, "result": "failed"},
                {"dateRange": {"preset": "this-month"}, "groupBy": "course"},
            ]
        }
    )


class AssessmentResultsResolved(FilteredRangeResolved):
    group_by: GroupBy = GroupBy.NONE
    result: Result | None = None

    @property
    def grouped(self) -> bool:
        return self.group_by == GroupBy.COURSE


class AssessmentResults(ReportDefinition[AssessmentResultsParameters, AssessmentResultsResolved]):
    key = "assessment-results"
    name = N_("Assessment results")
    description = N_(
        "One row per quiz submission in the range with its score and whether it passed, or one "
        "row per course (attempts, learners, pass rate, average / lowest / highest score)."
    )
    parameters_model = AssessmentResultsParameters
    resolved_model = AssessmentResultsResolved
    source = LearningEvent
    columns: ClassVar[list[Column]] = DETAIL_COLUMNS
    default_sort: ClassVar[list[str]] = ["submittedAt"]
    column_fields: ClassVar[dict[str, tuple[str, ...]]] = {"quizId": ("payload.quizId",)}
    charts = chart_definitions.ASSESSMENT_RESULTS
    option_labels: ClassVar[dict[str, str]] = {"groupBy": N_("Group by"), "result": N_("Result")}
    mode_parameters: ClassVar[tuple[dict[str, Any], ...]] = (
        {"groupBy": "none"},
        {"groupBy": "course"},
    )
    option_values: ClassVar[dict[str, str | dict[str, str]]] = {
        "groupBy": {"none": N_("Submission"), "course": N_("Course")},
        "result": {"passed": N_("Passed"), "failed": N_("Failed")},
    }

    def resolve_parameters(
        self, params: AssessmentResultsParameters, now: datetime
    ) -> AssessmentResultsResolved:
        return AssessmentResultsResolved(
            **self.resolved_fields(params, now), group_by=params.group_by, result=params.result
        )

    def run_group_columns(self, resolved: AssessmentResultsResolved) -> tuple[str, ...]:
        return ("courseCode",) if resolved.grouped else ()

    def run_columns(self, resolved: AssessmentResultsResolved) -> list[Column]:
        return COURSE_COLUMNS if resolved.grouped else DETAIL_COLUMNS

    def run_totals(self, resolved: AssessmentResultsResolved) -> Mapping[str, Total]:
        return COURSE_TOTALS if resolved.grouped else DETAIL_TOTALS

    def _match(self, resolved: AssessmentResultsResolved, scope: DataScope) -> dict[str, Any]:
        return {
            "type": SUBMITTED,
            "occurred_at": range_match(resolved.date_range),
            **scope_match(scope, departments=resolved.department_ids, courses=resolved.course_ids),
        }

    async def _judged(self, resolved: AssessmentResultsResolved, scope: DataScope) -> list[Stage]:
        """Sets `passed` on each submission (null when it cannot be judged): the courses'
        passing scores are written into the stage rather than joined per submission. Applies
        the `result` filter."""
        courses = effective_ids(resolved.course_ids, scope.course_ids)
        passed = passed_by_course(await passing_scores(courses))
        stages: list[Stage] = [
            {"$set": {"passed": {"$cond": [{"$isNumber": "$payload.score"}, passed, None]}}}
        ]
        if resolved.result:
            stages.append({"$match": {"passed": resolved.result == Result.PASSED}})
        return stages

    async def count_stages(
        self, resolved: AssessmentResultsResolved, scope: DataScope
    ) -> list[Stage]:
        match: Stage = {"$match": self._match(resolved, scope)}
        judged = await self._judged(resolved, scope) if resolved.result else []
        if resolved.grouped:
            return [match, *judged, {"$group": {"_id": "$course_id"}}]
        return [match, *judged]  # without a result filter, an index count

    def facts(self, resolved: AssessmentResultsResolved, scope: DataScope) -> FactRead:
        """One indexed read of the submissions (`(type, occurred_at)`), sorted by the server;
        learner, department and course (with its passing score, for `passed`) joined in the
        worker, where the `result` filter then runs."""
        wanted = resolved.result == Result.PASSED if resolved.result else None

        # Bound once, not per row.
        learner_course, course = _LEARNER_COURSE.cells, _LEARNER_COURSE.course

        def to_row(doc: dict[str, Any], dims: Dimensions) -> Row:
            payload = _payload(doc)
            quiz, score = payload.get("quizId"), payload.get("score")
            fields = course(doc, dims)
            return (
                *learner_course(doc, dims),
                quiz_cell(quiz, fields[_QUIZZES]),
                number(score),
                judge(score, fields[_PASSING_SCORE]),
                utc(doc.get("occurred_at")),
            )

        def after_join(doc: dict[str, Any], dims: Dimensions) -> bool:
            passing = course(doc, dims)[_PASSING_SCORE]
            return judge(_payload(doc).get("score"), passing) is wanted

        reads, keep = split_match(self._match(resolved, scope), _FACT_INDEX, naive=True)
        return FactRead(
            reads=reads,
            keep=keep,
            projection=_FACT_FIELDS,
            joins=_LEARNER_COURSE.joins,
            to_row=to_row,
            # Sorted by the server one slice of the range at a time (a sort of ~SLICE_DOCS
            # documents of an index range that is already in occurred_at order), the slices in
            # ascending order: cheaper than a worker-side `order`, which would pickle every row
            # to scratch files and merge them back.
            sort={"occurred_at": 1, "_id": 1},
            slice_field="occurred_at",
            after_join=after_join if wanted is not None else None,
            naive_datetimes=True,  # `utc()` makes the cells aware again, as they were
        )

    def _course_pipeline(self, match: dict[str, Any], judged: list[Stage]) -> list[Stage]:
        score = "$payload.score"
        return [
            {"$match": match},
            *judged,
            {
                "$group": {
                    "_id": {"course": "$course_id", "user": "$user_id"},
                    "attempts": {"$sum": 1},
                    "passed": {"$sum": {"$cond": [{"$eq": ["$passed", True]}, 1, 0]}},
                    # Submissions that could be judged (a numeric score and a passing score).
                    "judged": {"$sum": {"$cond": [{"$eq": [{"$type": "$passed"}, "bool"]}, 1, 0]}},
                    "scored": {"$sum": is_numeric(score)},
                    "total": {"$sum": scaled(score)},
                    "min": {"$min": numeric(score)},
                    "max": {"$max": numeric(score)},
                }
            },
            {
                "$group": {
                    "_id": "$_id.course",
                    "attempts": {"$sum": "$attempts"},
                    "learners": {"$sum": 1},
                    "passed": {"$sum": "$passed"},
                    "judged": {"$sum": "$judged"},
                    "scored": {"$sum": "$scored"},
                    "total": {"$sum": "$total"},
                    "min": {"$min": "$min"},
                    "max": {"$max": "$max"},
                }
            },
            # The (few) courses' code and title, joined once per course.
            *lookup_one(COURSES, "_id", "course", {"code": 1, "title": 1}),
            {"$sort": {"course.code": 1, "_id": 1}},
        ]

    async def plan(self, resolved: AssessmentResultsResolved, scope: DataScope) -> Plan:
        if not resolved.grouped:
            return Plan.of_facts(self.facts(resolved, scope))
        judged = await self._judged(resolved, scope)
        return Plan(self._course_pipeline(self._match(resolved, scope), judged), _course_row)

    def summary(self, resolved: AssessmentResultsResolved | None) -> AssessmentSummary:
        return AssessmentSummary(grouped=resolved.grouped if resolved is not None else None)


def _payload(doc: dict[str, Any]) -> dict[str, Any]:
    payload = doc.get("payload")
    return payload if isinstance(payload, dict) else {}


def _course_row(doc: dict[str, Any]) -> Row:
    course = doc.get("course") or {}
    scored = doc["scored"]
    return (
        course.get("code"),
        course.get("title"),
        doc["attempts"],
        doc["learners"],
        rate(doc["passed"], doc["judged"]),
        exact_average(doc["total"], scored),
        number(doc.get("min")),
        number(doc.get("max")),
    )


_FACT_INDEX = ("type", "occurred_at")
_FACT_FIELDS = dict.fromkeys(
    ("user_id", "course_id", "department_id", "occurred_at", "payload.quizId", "payload.score"),
    1,
)
# The learner, the course (with its passing score and quizzes) and the department of a
# submission.
_LEARNER_COURSE = LearnerCourse("passing_score", "quizzes")
_PASSING_SCORE, _QUIZZES = 2, 3  # in the course's fields: code, title, passing_score, quizzes


ASSESSMENT_RESULTS = AssessmentResults()
