"""The report catalogue: one module per report type, registered here.

Adding a report type is adding one module with a `ReportDefinition` subclass and one line in
the `register` calls below; the `report-type` lookup codes, the metadata API and the job,
template and schedule validation all read this registry.
"""

from __future__ import annotations

from app.errors import NotFound, ValidationFailed
from app.reports.reading.query import Plan, Row
from app.reports.types.assessment_results import ASSESSMENT_RESULTS
from app.reports.types.base import (
    AnyReportDefinition,
    Column,
    Figure,
    LabelledCode,
    Mode,
    ReportDefinition,
    Resolved,
    Summarizer,
    column,
    column_index,
    figure_definitions,
    measure,
)
from app.reports.types.compliance_status import COMPLIANCE_STATUS
from app.reports.types.course_completion import COURSE_COMPLETION
from app.reports.types.department_summary import DEPARTMENT_SUMMARY
from app.reports.types.learner_progress import LEARNER_PROGRESS
from app.reports.types.learning_activity import LEARNING_ACTIVITY
from app.reports.types.parameters import ReportParameters, ResolvedParameters
from app.reports.types.registry import ReportTypeRegistry

REPORT_TYPES = ReportTypeRegistry()
register = REPORT_TYPES.register
unregister = REPORT_TYPES.unregister

register(LEARNER_PROGRESS)
register(COURSE_COMPLETION)
register(DEPARTMENT_SUMMARY)
register(LEARNING_ACTIVITY)
register(ASSESSMENT_RESULTS)
register(COMPLIANCE_STATUS)


def get_report_type(key: str, *, field: str | None = None) -> AnyReportDefinition:
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
    "AnyReportDefinition",
    "Column",
    "Figure",
    "LabelledCode",
    "Mode",
    "Plan",
    "ReportDefinition",
    "ReportParameters",
    "ReportTypeRegistry",
    "Resolved",
    "ResolvedParameters",
    "Row",
    "Summarizer",
    "column",
    "column_index",
    "figure_definitions",
    "get_report_type",
    "measure",
    "register",
    "unregister",
]
