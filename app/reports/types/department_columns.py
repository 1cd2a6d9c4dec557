"""The department summary's columns: the same keys and cells in tree mode (each row rolls up
its subtree) and flat mode (each row holds the department's own data), with definitions that
say which."""

from __future__ import annotations

from app.i18n import N_
from app.reports.rendering.base import Column
from app.reports.rendering.totals import SUM, Total, rate_of
from app.reports.types.columns import column


def columns_of(tree: bool) -> list[Column]:
    """The columns of a tree-mode (each row rolls up its subtree) or flat (each row holds the
    department's own data) run: the same keys and cells, definitions that say which (each
    written out whole, so it is translated whole)."""

    def say(in_tree: str, flat: str) -> str:
        return in_tree if tree else flat

    return [
        column(
            "departmentName",
            N_("Department"),
            "string",
            say(N_("The department (indented under its parent)"), N_("The department")),
        ),
        column("departmentCode", N_("Code"), "string", N_("The department's code")),
        column(
            "enrollments",
            N_("Enrolled in range"),
            "integer",
            say(
                N_(
                    "Enrollments whose enrolment date is in the range (the cohort), in the "
                    "department and every department under it; the summary counts each "
                    "enrollment once"
                ),
                N_(
                    "Enrollments whose enrolment date is in the range (the cohort), in the "
                    "department itself (its sub-departments not included); the summary adds up "
                    "the rows"
                ),
            ),
        ),
        column(
            "withdrawn",
            N_("Withdrawn (of enrolled)"),
            "integer",
            say(
                N_(
                    "Of the enrolled in range, those with the status Withdrawn; the summary "
                    "counts each enrollment once"
                ),
                N_(
                    "Of the enrolled in range, those with the status Withdrawn; the summary adds "
                    "up the rows"
                ),
            ),
        ),
        column(
            "completed",
            N_("Completed (of enrolled)"),
            "integer",
            say(
                N_(
                    "Of the enrolled in range, those with the status Completed (whenever they "
                    "completed); the summary counts each enrollment once"
                ),
                N_(
                    "Of the enrolled in range, those with the status Completed (whenever they "
                    "completed); the summary adds up the rows"
                ),
            ),
        ),
        column(
            "completionRate",
            N_("Completion rate"),
            "percent",
            N_(
                "Completed (of enrolled) ÷ (Enrolled in range − Withdrawn (of enrolled)), as a "
                "percentage with 1 decimal; empty when the whole cohort withdrew"
            ),
        ),
        column(
            "completions",
            N_("Completions in range"),
            "integer",
            say(
                N_(
                    "Enrollments completed in the range, whenever enrolled, in the department "
                    "and every department under it (not the cohort's completions: see Completed "
                    "(of enrolled)); the summary counts each enrollment once"
                ),
                N_(
                    "Enrollments completed in the range, whenever enrolled, in the department "
                    "itself (its sub-departments not included) (not the cohort's completions: "
                    "see Completed (of enrolled)); the summary adds up the rows"
                ),
            ),
        ),
        column(
            "averageScore",
            N_("Average score"),
            "number",
            say(
                N_(
                    "Mean score (0–100 scale) of the enrollments completed in the range, in the "
                    "department and every department under it, that have one; 1 decimal, half up"
                ),
                N_(
                    "Mean score (0–100 scale) of the enrollments completed in the range, in the "
                    "department itself (its sub-departments not included), that have one; "
                    "1 decimal, half up"
                ),
            ),
        ),
        column(
            "activeLearners",
            N_("Active learners"),
            "integer",
            say(
                N_(
                    "Distinct learners with a learning event in the range, in the department "
                    "and every department under it"
                ),
                N_(
                    "Distinct learners with a learning event in the range, in the department "
                    "itself (its sub-departments not included)"
                ),
            ),
        ),
        column(
            "learningHours",
            N_("Learning hours"),
            "number",
            say(
                N_(
                    "Time recorded on the range's learning events in the department and every "
                    "department under it: Σ durationSeconds ÷ 3600, in hours, rounded once to 1 "
                    "decimal (the summary sums the unrounded times, then rounds)"
                ),
                N_(
                    "Time recorded on the range's learning events in the department itself (its "
                    "sub-departments not included): Σ durationSeconds ÷ 3600, in hours, rounded "
                    "once to 1 decimal (the summary sums the unrounded times, then rounds)"
                ),
            ),
        ),
        column(
            "overdue",
            N_("Overdue"),
            "integer",
            say(
                N_(
                    "Enrollments in the department and every department under it neither "
                    "completed nor withdrawn whose due date is before the range's end; the "
                    "summary counts each enrollment once"
                ),
                N_(
                    "Enrollments in the department itself (its sub-departments not included) "
                    "neither completed nor withdrawn whose due date is before the range's end; "
                    "the summary adds up the rows"
                ),
            ),
        ),
        # The tree (CSV only: PDF and Excel indent the department's name instead).
        column(
            "level",
            N_("Level"),
            "integer",
            N_("Depth in the department tree (0: a top-level row)"),
            csv_only=True,
        ),
        column(
            "parentCode",
            N_("Parent code"),
            "string",
            N_("The code of the parent department's row (empty for a top-level row)"),
            csv_only=True,
        ),
    ]


TREE_COLUMNS = columns_of(tree=True)
FLAT_COLUMNS = columns_of(tree=False)
# A flat list's totals row: each department's own counts add up, the completion rate is the
# rate of the totals. Active learners (a learner may be active in several departments'
# courses), the average score (the rows do not carry how many scores each is over) and the
# learning hours (the summary sums unrounded seconds, the rows are rounded) stay empty.
FLAT_TOTALS: dict[str, Total] = {
    **dict.fromkeys(("enrollments", "withdrawn", "completed", "completions", "overdue"), SUM),
    "completionRate": rate_of("completed", "enrollments", "withdrawn"),
}
