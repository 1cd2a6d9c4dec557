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

LookupSeed = tuple[str, str, str | None, dict[str, Any]]  # code, label, description, metadata
ValuesSource = Callable[[], list[LookupSeed]]

_sources: dict[str, ValuesSource] = {}
# Bumped whenever the built-in codes may have changed, so copies of them know to re-read.
generation = 0


def _codes(*pairs: tuple[str, str]) -> list[LookupSeed]:
    return [(code, label, None, {}) for code, label in pairs]


CATEGORIES: dict[str, dict[str, Any]] = {
    # Supplied by the report-type registry (app/reports/types).
    "report-type": {"label": "Report type"},
    "report-status": {
        "label": "Report status",
        "values": _codes(
            ("queued", "Queued"),
            ("running", "Running"),
            ("completed", "Completed"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
            ("expired", "Expired"),
        ),
    },
    # Supplied by the format registry (app/reports/formats.py).
    "report-format": {"label": "Report format"},
    "template-visibility": {
        "label": "Template visibility",
        "values": _codes(
            ("private", "Private"),
            ("department", "My department"),
            ("organization", "Whole organization"),
        ),
    },
    "schedule-frequency": {
        "label": "Schedule frequency",
        "values": _codes(
            ("daily", "Daily"),
            ("weekly", "Weekly"),
            ("monthly", "Monthly"),
            ("quarterly", "Quarterly"),
            ("cron", "Cron expression"),
        ),
    },
    "date-range-preset": {
        "label": "Date range preset",
        "values": _codes(
            ("today", "Today"),
            ("yesterday", "Yesterday"),
            ("last-7-days", "Last 7 days"),
            ("last-30-days", "Last 30 days"),
            ("this-month", "This month"),
            ("last-month", "Last month"),
            ("this-quarter", "This quarter"),
            ("last-quarter", "Last quarter"),
            ("year-to-date", "Year to date"),
            ("last-year", "Last year"),
            ("custom", "Custom range"),
        ),
    },
    "learning-event-type": {
        "label": "Learning event type",
        "values": _codes(
            ("course-enrolled", "Course enrolled"),
            ("course-started", "Course started"),
            ("lesson-started", "Lesson started"),
            ("lesson-completed", "Lesson completed"),
            ("quiz-started", "Quiz started"),
            ("quiz-submitted", "Quiz submitted"),
            ("quiz-passed", "Quiz passed"),
            ("quiz-failed", "Quiz failed"),
            ("course-completed", "Course completed"),
            ("certificate-issued", "Certificate issued"),
        ),
    },
    "enrollment-status": {
        "label": "Enrollment status",
        "values": _codes(
            ("enrolled", "Enrolled"),
            ("in-progress", "In progress"),
            ("completed", "Completed"),
            ("failed", "Failed"),
            ("withdrawn", "Withdrawn"),
        ),
    },
    "compliance-state": {
        "label": "Compliance state",
        "values": _codes(
            ("compliant", "Compliant"),
            ("completed-late", "Completed late"),
            ("overdue", "Overdue"),
            ("due-soon", "Due soon"),
            ("not-due", "Not due"),
        ),
    },
    # The platform's course categories (`courses.category`); reports print these labels.
    "course-category": {
        "label": "Course category",
        "values": _codes(
            ("compliance", "Compliance"),
            ("engineering", "Engineering"),
            ("sales", "Sales"),
            ("leadership", "Leadership"),
            ("customer-success", "Customer success"),
            ("productivity", "Productivity"),
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
