"""Each report type's charts, chosen for what its readers ask (`ReportDefinition.charts`): the
columns that feed them and how (`charting.Measure`). The values are the report's own figures:
a chart of rates reads the rows' rates, or computes one rate exactly as the summary does."""

from __future__ import annotations

from typing import Any

from app.i18n import N_
from app.reports.rendering.charts import ChartKind
from app.reports.types.charting import ChartDefinition, Measure

_RATE = N_("Completion rate (%)")

DEPARTMENT_SUMMARY = (
    ChartDefinition(
        key="completionRateByDepartment",
        title=N_("Completion rate by department"),
        description=N_(
            "Each department's completion rate: its enrollments in the range that are "
            "completed, of those enrolled (the Completion rate column)"
        ),
        kind=ChartKind.BAR,
        measure=Measure.ROW,
        category="departmentName",
        value="completionRate",
        value_title=_RATE,
    ),
)

COURSE_COMPLETION = (
    ChartDefinition(
        key="completionRateByCourse",
        title=N_("Completion rate by course"),
        description=N_(
            "Each course's completion rate: its enrollments that are completed, of those "
            "enrolled (the Completion rate column)"
        ),
        kind=ChartKind.BAR,
        measure=Measure.ROW,
        category="courseTitle",
        value="completionRate",
        value_title=_RATE,
    ),
)

COMPLIANCE_STATUS = (
    ChartDefinition(
        key="complianceStatesByDepartment",
        title=N_("Compliance states by department"),
        description=N_(
            "The report's enrollments per department, split by compliance state (the rows counted)"
        ),
        kind=ChartKind.BAR,
        measure=Measure.COUNT,
        category="departmentName",
        series="complianceState",
        value_title=N_("Enrollments"),
    ),
)


def _period(resolved: Any) -> str:
    unit = getattr(getattr(resolved, "granularity", None), "value", "day")
    return {"week": N_("Week starting"), "month": N_("Month starting")}.get(unit, N_("Day"))


LEARNING_ACTIVITY = (
    ChartDefinition(
        key="eventsPerPeriodByType",
        title=N_("Events per period by event type"),
        description=N_(
            "Learning events in each period of the report's granularity (day, week or month), "
            "stacked by event type (the Events column added up)"
        ),
        kind=ChartKind.COLUMN,
        measure=Measure.SUM,
        category="periodStart",
        value="events",
        series="eventType",
        value_title=N_("Events"),
        category_title_for=_period,
    ),
)

ASSESSMENT_RESULTS = (
    ChartDefinition(
        key="scoreDistribution",
        title=N_("Score distribution"),
        description=N_(
            "Submissions by score band of ten points (0–9 … 90–100); submissions without a "
            "score are left out"
        ),
        kind=ChartKind.COLUMN,
        measure=Measure.BANDS,
        category="score",
        value_title=N_("Submissions"),
        category_title=N_("Score"),
        when={"groupBy": "none"},
    ),
    ChartDefinition(
        key="passRateByQuiz",
        title=N_("Pass rate by quiz"),
        description=N_(
            "Each quiz's pass rate: its submissions that passed, of those that could be judged "
            "(passed ÷ judged, as the summary's pass rate)"
        ),
        kind=ChartKind.BAR,
        measure=Measure.RATE,
        category="quizId",
        value="passed",
        value_title=N_("Pass rate (%)"),
        category_title=N_("Quiz"),
        when={"groupBy": "none"},
    ),
    ChartDefinition(
        key="passRateByCourse",
        title=N_("Pass rate by course"),
        description=N_("Each course's pass rate (the Pass rate column of the rows per course)"),
        kind=ChartKind.BAR,
        measure=Measure.ROW,
        category="courseTitle",
        value="passRate",
        value_title=N_("Pass rate (%)"),
        when={"groupBy": "course"},
    ),
)

LEARNER_PROGRESS = (
    ChartDefinition(
        key="enrollmentsByStatus",
        title=N_("Enrollments by status"),
        description=N_("The report's enrollments split by status (the rows counted)"),
        kind=ChartKind.BAR,
        measure=Measure.COUNT,
        category="status",
        value_title=N_("Enrollments"),
    ),
)
