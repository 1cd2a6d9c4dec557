"""Field types for lookup codes, validated against their category (see validation.py), and the
same codes as responses carry them (`...Value`: listed in the JSON Schema, not checked).

Type checkers see plain `str`; at run time each is an `Annotated[str, ...]` whose JSON Schema
lists the category's codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.lookups.validation import LookupCode, LookupCodeOut

if TYPE_CHECKING:
    ReportTypeCode = str
    FormatCode = str
    VisibilityCode = str
    FrequencyCode = str
    EventTypeCode = str
    EnrollmentStatusCode = str
    CourseCategoryCode = str
    ReportTypeValue = str
    FormatValue = str
    VisibilityValue = str
    FrequencyValue = str
    EventTypeValue = str
else:
    ReportTypeCode = LookupCode("report-type")
    FormatCode = LookupCode("report-format")
    VisibilityCode = LookupCode("template-visibility")
    FrequencyCode = LookupCode("schedule-frequency")
    EventTypeCode = LookupCode("learning-event-type")
    EnrollmentStatusCode = LookupCode("enrollment-status")
    CourseCategoryCode = LookupCode("course-category")
    ReportTypeValue = LookupCodeOut("report-type")
    FormatValue = LookupCodeOut("report-format")
    VisibilityValue = LookupCodeOut("template-visibility")
    FrequencyValue = LookupCodeOut("schedule-frequency")
    EventTypeValue = LookupCodeOut("learning-event-type")
