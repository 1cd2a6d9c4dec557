"""Field types for lookup codes, validated against their category (see validation.py).

Type checkers see plain `str`; at run time each is an `Annotated[str, ...]` validator whose JSON
Schema lists the allowed codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.lookups.validation import LookupCode

if TYPE_CHECKING:
    ReportTypeCode = str
    FormatCode = str
    VisibilityCode = str
    FrequencyCode = str
    EventTypeCode = str
    EnrollmentStatusCode = str
    CourseCategoryCode = str
else:
    ReportTypeCode = LookupCode("report-type")
    FormatCode = LookupCode("report-format")
    VisibilityCode = LookupCode("template-visibility")
    FrequencyCode = LookupCode("schedule-frequency")
    EventTypeCode = LookupCode("learning-event-type")
    EnrollmentStatusCode = LookupCode("enrollment-status")
    CourseCategoryCode = LookupCode("course-category")
