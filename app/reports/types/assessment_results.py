"""assessment-results: one row per `quiz-submitted` event in range, or one per course with
`groupBy=course`.

`passed` is `payload.score ≥ the course's passingScore`; a submission without a numeric score
(or without a known course) has an empty `passed` and matches neither `result` filter. Grouped:
`passRate` and `averageScore` are over the attempts that have a score.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.learning_events.models import LearningEvent
from app.reports.dates import DateRange
from app.reports.types.base import (
    COURSES,
    COURSES_DESCRIPTION,
    DATE_RANGE_DESCRIPTION,
    DEPARTMENTS,
    DEPARTMENTS_DESCRIPTION,
    LEARNER_COURSE_COLUMNS,
    USERS,
    Column,
    IdList,
    ReportDefinition,
    ReportParameters,
    Row,
    aggregate_count,
    average,
    column,
    default_date_range,
    fmt_count,
    fmt_number,
    fmt_rate,
    lookup_one,
    number,
    range_match,
    rate,
    scope_match,
    stream,
    utc,
)
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


DETAIL_COLUMNS = [
    *LEARNER_COURSE_COLUMNS,
    column("quizId", "Quiz", "string"),
    column("score", "Score", "number"),
    column("passed", "Passed", "boolean"),
    column("submittedAt", "Submitted", "datetime"),
]
COURSE_COLUMNS = [
    column("courseCode", "Course code", "string"),
    column("courseTitle", "Course", "string"),
    column("attempts", "Attempts", "integer"),
    column("uniqueLearners", "Unique learners", "integer"),
    column("passRate", "Pass rate", "percent"),
    column("averageScore", "Average score", "number"),
    column("minScore", "Lowest score", "number"),
    column("maxScore", "Highest score", "number"),
]


def _grouped(resolved: Mapping[str, Any]) -> bool:
    return resolved.get("groupBy") == GroupBy.COURSE.value


class AssessmentResults(ReportDefinition):
    key = "assessment-results"
    name = "Assessment results"
    description = (
        "One row per quiz submission in the range with its score and whether it passed, or one "
        "row per course (attempts, learners, pass rate, average / lowest / highest score)."
    )
    parameters_model = AssessmentResultsParameters
    columns: ClassVar[list[Column]] = DETAIL_COLUMNS
    default_sort: ClassVar[list[str]] = ["submittedAt"]
    option_labels: ClassVar[dict[str, str]] = {"groupBy": "Group by", "result": "Result"}

    def resolve_options(self, params: Any, now: datetime) -> dict[str, Any]:
        return {
            "groupBy": params.group_by.value,
            "result": params.result.value if params.result else None,
        }

    def columns_for(self, resolved: Mapping[str, Any]) -> list[Column]:
        return COURSE_COLUMNS if _grouped(resolved) else DETAIL_COLUMNS

    def _match(self, resolved: Mapping[str, Any], scope: DataScope) -> dict[str, Any]:
        return {
            "type": SUBMITTED,
            "occurred_at": range_match(resolved),
            **scope_match(resolved, scope),
        }

    def _judged(self, resolved: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Joins the course and sets `passed` (null when it cannot be judged); applies the
        `result` filter."""
        stages: list[dict[str, Any]] = [
            *lookup_one(
                COURSES, "course_id", "course", {"code": 1, "title": 1, "passing_score": 1}
            ),
            {
                "$set": {
                    "passed": {
                        "$cond": [
                            {
                                "$and": [
                                    {"$isNumber": "$payload.score"},
                                    {"$isNumber": "$course.passing_score"},
                                ]
                            },
                            {"$gte": ["$payload.score", "$course.passing_score"]},
                            None,
                        ]
                    }
                }
            },
        ]
        result = resolved.get("result")
        if result:
            stages.append({"$match": {"passed": result == Result.PASSED.value}})
        return stages

    async def count(self, resolved: Mapping[str, Any], scope: DataScope) -> int:
        collection = LearningEvent.get_pymongo_collection()
        if _grouped(resolved):
            return await aggregate_count(
                collection,
                [
                    {"$match": self._match(resolved, scope)},
                    *self._judged(resolved),
                    {"$group": {"_id": "$course_id"}},
                ],
            )
        if not resolved.get("result"):
            return await collection.count_documents(self._match(resolved, scope))
        return await aggregate_count(
            collection, [{"$match": self._match(resolved, scope)}, *self._judged(resolved)]
        )

    def pipeline(self, resolved: Mapping[str, Any], scope: DataScope) -> list[dict[str, Any]]:
        if _grouped(resolved):
            return self._course_pipeline(resolved, scope)
        return [
            {"$match": self._match(resolved, scope)},
            # Sorted straight after the match, on the (type, occurred_at) index: the joins below
            # keep the order, so rows stream without a blocking sort.
            {"$sort": {"occurred_at": 1, "_id": 1}},
            *self._judged(resolved),
            *lookup_one(USERS, "user_id", "user", {"name": 1, "email": 1}),
            *lookup_one(DEPARTMENTS, "department_id", "department", {"name": 1}),
            {
                "$project": {
                    "learnerName": "$user.name",
                    "learnerEmail": "$user.email",
                    "departmentName": "$department.name",
                    "courseCode": "$course.code",
                    "courseTitle": "$course.title",
                    "quizId": "$payload.quizId",
                    "score": "$payload.score",
                    "passed": 1,
                    "occurred_at": 1,
                }
            },
        ]

    def _course_pipeline(
        self, resolved: Mapping[str, Any], scope: DataScope
    ) -> list[dict[str, Any]]:
        scored = {"$cond": [{"$isNumber": "$payload.score"}, 1, 0]}
        return [
            {"$match": self._match(resolved, scope)},
            *self._judged(resolved),
            {
                "$group": {
                    "_id": {"course": "$course_id", "user": "$user_id"},
                    "code": {"$first": "$course.code"},
                    "title": {"$first": "$course.title"},
                    "attempts": {"$sum": 1},
                    "passed": {"$sum": {"$cond": [{"$eq": ["$passed", True]}, 1, 0]}},
                    "scored": {"$sum": scored},
                    "total": {"$sum": "$payload.score"},
                    "min": {"$min": "$payload.score"},
                    "max": {"$max": "$payload.score"},
                }
            },
            {
                "$group": {
                    "_id": "$_id.course",
                    "code": {"$first": "$code"},
                    "title": {"$first": "$title"},
                    "attempts": {"$sum": "$attempts"},
                    "learners": {"$sum": 1},
                    "passed": {"$sum": "$passed"},
                    "scored": {"$sum": "$scored"},
                    "total": {"$sum": "$total"},
                    "min": {"$min": "$min"},
                    "max": {"$max": "$max"},
                }
            },
            {"$sort": {"code": 1, "_id": 1}},
        ]

    def fetch(
        self, resolved: Mapping[str, Any], scope: DataScope, batch_size: int
    ) -> AsyncIterator[list[Row]]:
        return stream(
            LearningEvent.get_pymongo_collection(),
            self.pipeline(resolved, scope),
            batch_size,
            _course_row if _grouped(resolved) else _detail_row,
        )

    def summarizer(self, resolved: Mapping[str, Any] | None = None) -> AssessmentSummary:
        return AssessmentSummary(grouped=_grouped(resolved) if resolved is not None else None)


def _detail_row(doc: dict[str, Any]) -> Row:
    quiz = doc.get("quizId")
    passed = doc.get("passed")
    return (
        doc.get("learnerName"),
        doc.get("learnerEmail"),
        doc.get("departmentName"),
        doc.get("courseCode"),
        doc.get("courseTitle"),
        str(quiz) if quiz is not None else None,
        number(doc.get("score")),
        passed if isinstance(passed, bool) else None,
        utc(doc.get("occurred_at")),
    )


def _course_row(doc: dict[str, Any]) -> Row:
    scored = doc["scored"]
    return (
        doc.get("code"),
        doc.get("title"),
        doc["attempts"],
        doc["learners"],
        rate(doc["passed"], scored),
        average(doc["total"], scored),
        number(doc.get("min")),
        number(doc.get("max")),
    )


class AssessmentSummary:
    """Detail: submissions, passed, pass rate and average score (over scored submissions).
    Grouped: courses, attempts, lowest and highest score (exact over all courses). Called
    without the resolved parameters it tells the two row shapes apart by their length."""

    def __init__(self, *, grouped: bool | None = None) -> None:
        self.grouped = grouped
        self.rows = self.attempts = self.passed = self.scored = 0
        self.total = 0.0
        self.low: float | None = None
        self.high: float | None = None

    def add(self, batch: Sequence[Row]) -> None:
        for row in batch:
            if self.grouped is None:
                self.grouped = len(row) == len(COURSE_COLUMNS)
            self.rows += 1
            if self.grouped:
                self.attempts += row[2]
                low, high = row[6], row[7]
                if low is not None:
                    self.low = low if self.low is None else min(self.low, low)
                if high is not None:
                    self.high = high if self.high is None else max(self.high, high)
                continue
            score, passed = row[6], row[7]
            self.attempts += 1
            if score is not None:
                self.scored += 1
                self.total += score
            if passed:
                self.passed += 1

    def figures(self) -> list[tuple[str, str]]:
        if self.grouped:
            return [
                ("Courses", fmt_count(self.rows)),
                ("Attempts", fmt_count(self.attempts)),
                ("Lowest score", fmt_number(self.low)),
                ("Highest score", fmt_number(self.high)),
            ]
        return [
            ("Submissions", fmt_count(self.attempts)),
            ("Passed", fmt_count(self.passed)),
            ("Pass rate", fmt_rate(rate(self.passed, self.scored))),
            ("Average score", fmt_number(average(self.total, self.scored))),
        ]


ASSESSMENT_RESULTS = AssessmentResults()
