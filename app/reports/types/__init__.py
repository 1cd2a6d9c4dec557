"""The report catalogue: one module per report type, registered here.

Adding a report type is adding one module with a `ReportDefinition` subclass and listing its
instance below.
"""

from __future__ import annotations

from app.errors import NotFound, ValidationFailed
from app.reports.types.assessment_results import ASSESSMENT_RESULTS
from app.reports.types.base import (
    Column,
    ReportDefinition,
    ReportParameters,
    Resolved,
    Row,
    Summarizer,
    column,
)
from app.reports.types.compliance_status import COMPLIANCE_STATUS
from app.reports.types.course_completion import COURSE_COMPLETION
from app.reports.types.department_summary import DEPARTMENT_SUMMARY
from app.reports.types.learner_progress import LEARNER_PROGRESS
from app.reports.types.learning_activity import LEARNING_ACTIVITY

REPORT_TYPES: dict[str, ReportDefinition] = {
    definition.key: definition
    for definition in (
        LEARNER_PROGRESS,
        COURSE_COMPLETION,
        DEPARTMENT_SUMMARY,
        LEARNING_ACTIVITY,
        ASSESSMENT_RESULTS,
        COMPLIANCE_STATUS,
    )
}


def get_report_type(key: str, *, field: str | None = None) -> ReportDefinition:
    """The definition for `key`. Unknown keys raise NotFound (404, for a path parameter), or
    ValidationFailed naming `field` and the allowed keys when `field` is given (422, for a
    request body such as `reportType`)."""
    definition = REPORT_TYPES.get(key)
    if definition is not None:
        return definition
    allowed = list(REPORT_TYPES)
    if field is not None:
        raise ValidationFailed.one(
            field,
            f"{key!r} is not a report type; allowed: {', '.join(allowed)}",
            type="lookup_code",
            allowed=allowed,
        )
    raise NotFound(f"There is no report type {key!r}.", code="report-type-not-found")


__all__ = [
    "REPORT_TYPES",
    "Column",
    "ReportDefinition",
    "ReportParameters",
    "Resolved",
    "Row",
    "Summarizer",
    "column",
    "get_report_type",
]
