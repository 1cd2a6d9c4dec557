"""The lookup categories and their codes (spec §3; `compliance-state` gives the compliance-status
report's states their labels, `course-category` the courses' categories). Codes are kebab-case.

Most categories list their codes here. A category whose codes belong to another part of the
service has no `values`: the entry points hand its supplier in with `provide`
(`app/lookup_sources.py`: the `report-type` codes come from the report-type registry, the
`report-format` codes from the format registry; both import this package and so cannot be
imported by it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.i18n import N_

LookupSeed = tuple[str, str, str | None, dict[str, Any]]  # code, label, description, metadata
ValuesSource = Callable[[], list[LookupSeed]]

_sources: dict[str, ValuesSource] = {}
# Bumped whenever the built-in codes may have changed, so copies of them know to re-read.
generation = 0


def _codes(*pairs: tuple[str, str]) -> list[LookupSeed]:
    return [(code, label, None, {}) for code, label in pairs]


CATEGORIES: dict[str, dict[str, Any]] = {
    # Supplied by the report-type registry (app/reports/types).
    "report-type": {"label": N_("Report type")},
    "report-status": {
        "label": N_("Report status"),
        "values": _codes(
            ("queued", N_("Queued")),
            ("running", N_("Running")),
            ("completed", N_("Completed")),
            ("failed", N_("Failed")),
            ("cancelled", N_("Cancelled")),
            ("expired", N_("Expired")),
        ),
    },
    # Supplied by the format registry (app/reports/formats.py).
    "report-format": {"label": N_("Report format")},
    "template-visibility": {
        "label": N_("Template visibility"),
        "values": _codes(
            ("private", N_("Private")),
            ("department", N_("My department")),
            ("organization", N_("Whole organization")),
        ),
    },
    "schedule-frequency": {
        "label": N_("Schedule frequency"),
        "values": _codes(
            ("daily", N_("Daily")),
            ("weekly", N_("Weekly")),
            ("monthly", N_("Monthly")),
            ("quarterly", N_("Quarterly")),
            ("cron", N_("Cron expression")),
        ),
    },
    "date-range-preset": {
        "label": N_("Date range preset"),
        "values": _codes(
            ("today", N_("Today")),
            ("yesterday", N_("Yesterday")),
            ("last-7-days", N_("Last 7 days")),
            ("last-30-days", N_("Last 30 days")),
            ("this-month", N_("This month")),
            ("last-month", N_("Last month")),
            ("this-quarter", N_("This quarter")),
            ("last-quarter", N_("Last quarter")),
            ("year-to-date", N_("Year to date")),
            ("last-year", N_("Last year")),
            ("custom", N_("Custom range")),
        ),
    },
    "learning-event-type": {
        "label": N_("Learning event type"),
        "values": _codes(
            ("course-enrolled", N_("Course enrolled")),
            ("course-started", N_("Course started")),
            ("lesson-started", N_("Lesson started")),
            ("lesson-completed", N_("Lesson completed")),
            ("quiz-started", N_("Quiz started")),
            ("quiz-submitted", N_("Quiz submitted")),
            ("quiz-passed", N_("Quiz passed")),
            ("quiz-failed", N_("Quiz failed")),
            ("course-completed", N_("Course completed")),
            ("certificate-issued", N_("Certificate issued")),
        ),
    },
    "enrollment-status": {
        "label": N_("Enrollment status"),
        "values": _codes(
            ("enrolled", N_("Enrolled")),
            ("in-progress", N_("In progress")),
            ("completed", N_("Completed")),
            ("failed", N_("Failed")),
            ("withdrawn", N_("Withdrawn")),
        ),
    },
    "compliance-state": {
        "label": N_("Compliance state"),
        "values": _codes(
            ("compliant", N_("Compliant")),
            ("completed-late", N_("Completed late")),
            ("overdue", N_("Overdue")),
            ("due-soon", N_("Due soon")),
            ("not-due", N_("Not due")),
        ),
    },
    # The platform's course categories (`courses.category`); reports print these labels.
    "course-category": {
        "label": N_("Course category"),
        "values": _codes(
            ("compliance", N_("Compliance")),
            ("engineering", N_("Engineering")),
            ("sales", N_("Sales")),
            ("leadership", N_("Leadership")),
            ("customer-success", N_("Customer success")),
            ("productivity", N_("Productivity")),
        ),
    },
}


def provide(category: str, source: ValuesSource) -> None:
    """Makes `source` the supplier of a category's codes (read at each call, so codes
    registered later are included)."""
    if "values" in CATEGORIES[category]:
        raise ValueError(f"the {category} codes are listed in the catalogue")
    _sources[category] = source
    changed()


def changed() -> None:
    """Tells copies of the built-in codes (the validation snapshot) that a supplier's codes
    changed (a report type registered or unregistered)."""
    global generation
    generation += 1


def unsupplied() -> list[str]:
    """The categories whose codes come from a supplier that nobody has provided yet."""
    return [c for c, spec in CATEGORIES.items() if "values" not in spec and c not in _sources]


def category_values(category: str) -> list[LookupSeed]:
    """The built-in codes of a category, in order; a supplied category nobody supplies yet has
    none."""
    spec = CATEGORIES[category]
    if "values" in spec:
        values: list[LookupSeed] = spec["values"]
        return values
    source = _sources.get(category)
    return source() if source is not None else []
