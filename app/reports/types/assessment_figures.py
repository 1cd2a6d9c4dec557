"""assessment-results' columns and summary: what each figure means, next to the summary that
totals them, and the quiz cell (the quiz's id carrying its title).

Pass rate = passed ÷ judged submissions (a numeric score and a passing score both known), the
one definition for the per-course column and the detail summary (spec §5.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.i18n import N_
from app.reports.reading.query import Row
from app.reports.rendering.totals import COUNT, MAX, MEAN, MIN, SUM, Total
from app.reports.types.base import (
    LEARNER_COURSE_COLUMNS,
    ColumnType,
    Figure,
    LabelledCode,
    column,
    column_index,
    measure,
)
from app.reports.types.figures import Mean, rate

# Measures both row shapes (and the summaries) share: one definition each.
PASS_RATE = column(
    "passRate",
    N_("Pass rate"),
    "percent",
    N_(
        "Passed ÷ judged submissions (those whose score and whose course's passing score are both "
        "known), as a percentage with 1 decimal; empty when none could be judged"
    ),
)
AVERAGE_SCORE = column(
    "averageScore",
    N_("Average score"),
    "number",
    N_(
        "Mean of the numeric scores (0–100 scale), 1 decimal, half up; non-numeric scores are ignored"
    ),
)
DETAIL_COLUMNS = [
    *LEARNER_COURSE_COLUMNS,
    column(
        "quizId",
        N_("Quiz"),
        "string",
        N_(
            "The quiz the submission answered: its title (from the course's quizzes) in PDF and "
            "Excel, its id (payload.quizId) in CSV"
        ),
        labelled=True,
    ),
    column(
        "score",
        N_("Score"),
        "number",
        N_("The submitted score on a 0–100 scale; empty when none was stored as a number"),
    ),
    column(
        "passed",
        N_("Passed"),
        "boolean",
        N_(
            "Yes when the score ≥ the course's passing score, No when below; empty when it cannot "
            "be judged (no numeric score, or no passing score); the summary counts the passed ones"
        ),
    ),
    column(
        "submittedAt",
        N_("Submitted"),
        "datetime",
        N_("When the quiz was submitted (in the report's timezone)"),
    ),
]
COURSE_COLUMNS = [
    column("courseCode", N_("Course code"), "string", N_("The course's code")),
    column("courseTitle", N_("Course"), "string", N_("The course's title")),
    column(
        "attempts",
        N_("Attempts"),
        "integer",
        N_("Quiz submissions to the course in the range; the summary adds up every course"),
    ),
    column(
        "uniqueLearners",
        N_("Unique learners"),
        "integer",
        N_("Distinct learners who submitted in the range"),
    ),
    PASS_RATE,
    AVERAGE_SCORE,
    column(
        "minScore",
        N_("Lowest score"),
        "number",
        N_("Lowest numeric score (0–100 scale); the summary's is the lowest of every course"),
    ),
    column(
        "maxScore",
        N_("Highest score"),
        "number",
        N_("Highest numeric score (0–100 scale); the summary's is the highest of every course"),
    ),
]


# One submission per row: the submissions counted, the score averaged over the numeric ones.
DETAIL_TOTALS: dict[str, Total] = {"quizId": COUNT, "score": MEAN}
# One course per row: the attempts add up, the lowest and highest of every course; learners
# (one learner may submit to several courses), pass rate and average score (the rows do not
# carry what they are over) stay empty.
COURSE_TOTALS: dict[str, Total] = {"attempts": SUM, "minScore": MIN, "maxScore": MAX}


def quiz_cell(quiz: Any, quizzes: Any) -> str | None:
    """The quiz cell: its id, carrying its title when the course names the quiz (CSV prints the
    id, PDF and Excel the title); a quiz the course does not list shows its id everywhere."""
    if quiz is None:
        return None
    quiz_id = str(quiz)
    if isinstance(quizzes, list):
        for entry in quizzes:
            if isinstance(entry, dict) and entry.get("id") == quiz_id and entry.get("title"):
                return LabelledCode(quiz_id, str(entry["title"]))
    return quiz_id


class AssessmentSummary:
    """Detail: submissions, judged, passed, pass rate (passed ÷ judged) and average score (over
    scored submissions). Grouped: courses, attempts, lowest and highest score (exact over all
    courses). Called without the resolved parameters it tells the two row shapes apart by
    their length."""

    SUBMISSIONS = measure(
        "submissions",
        N_("Submissions"),
        "integer",
        N_("The report's rows: quiz submissions in the range, after the filters"),
    )
    JUDGED = measure(
        "judged",
        N_("Judged"),
        "integer",
        N_(
            "Submissions whose score and whose course's passing score are both known (the pass "
            "rate's denominator)"
        ),
    )
    COURSES = measure(
        "courses",
        N_("Courses"),
        "integer",
        N_("The report's rows: courses with submissions in the range"),
    )

    def __init__(self, *, grouped: bool | None = None) -> None:
        self.grouped = grouped
        self.rows = self.attempts = self.passed = self.judged = 0
        self.score = Mean()
        self.low: float | None = None
        self.high: float | None = None

    def add(self, batch: Sequence[Row]) -> None:
        for row in batch:
            if self.grouped is None:
                self.grouped = len(row) == len(COURSE_COLUMNS)
            self.rows += 1
            if self.grouped:
                at_attempts, at_low, at_high = _COURSE_SUMMARY_COLUMNS
                self.attempts += row[at_attempts]
                low, high = row[at_low], row[at_high]
                if low is not None:
                    self.low = low if self.low is None else min(self.low, low)
                if high is not None:
                    self.high = high if self.high is None else max(self.high, high)
                continue
            at_score, at_passed = _DETAIL_SUMMARY_COLUMNS
            score, passed = row[at_score], row[at_passed]
            self.attempts += 1
            self.score.add(score)
            if passed is not None:
                self.judged += 1
            if passed:
                self.passed += 1

    def figures(self) -> list[Figure]:
        if self.grouped:
            attempts, low, high = (COURSE_COLUMNS[i] for i in _COURSE_SUMMARY_COLUMNS)
            return [
                self.COURSES.figure(self.rows),
                attempts.figure(self.attempts),
                low.figure(self.low),
                high.figure(self.high),
            ]
        passed = DETAIL_COLUMNS[_DETAIL_SUMMARY_COLUMNS[1]]
        return [
            self.SUBMISSIONS.figure(self.attempts),
            self.JUDGED.figure(self.judged),
            passed.figure(self.passed, ColumnType.INTEGER),
            PASS_RATE.figure(rate(self.passed, self.judged)),
            AVERAGE_SCORE.figure(self.score.value()),
        ]


_COURSE_SUMMARY_COLUMNS = column_index(COURSE_COLUMNS, "attempts", "minScore", "maxScore")
_DETAIL_SUMMARY_COLUMNS = column_index(DETAIL_COLUMNS, "score", "passed")
