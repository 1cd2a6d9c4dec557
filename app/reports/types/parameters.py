"""Parameter building blocks: what a request may ask for (`ReportParameters` models) and what a
job stores once resolved (`ResolvedParameters` models).

The limits (`max_filter_ids`, `max_date_range_days`) reach the validators through pydantic's
validation context (see `app.reports.dates.limits_context`), never from global settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo

from app.common.schemas import ApiInput
from app.common.time import MAX_TIMEZONE_LENGTH, is_timezone
from app.reports.dates import (
    DatePreset,
    DateRange,
    StoredModel,
    StoredRange,
    UtcDateTime,
    configured_limit,
)


def _check_timezone(value: str) -> str:
    if len(value) > MAX_TIMEZONE_LENGTH:
        raise ValueError(f"at most {MAX_TIMEZONE_LENGTH} characters")
    if not is_timezone(value):
        raise ValueError(f"{value!r} is not an IANA timezone (e.g. Europe/Berlin)")
    return value


def _check_id_list(values: list[str], info: ValidationInfo) -> list[str]:
    limit = configured_limit(info, "max_filter_ids")
    if len(values) > limit:
        raise ValueError(f"at most {limit} ids are allowed, got {len(values)}")
    return list(dict.fromkeys(values))  # de-duplicated, order kept


OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def requested_ids(raw: Mapping[str, Any], name: str) -> list[str] | None:
    """The ids a departmentIds / courseIds filter names, read from the raw parameters (their
    other mistakes are the parameters model's to name)."""
    values = raw.get(name)
    if not isinstance(values, list):
        return None
    return [v.lower() for v in values if isinstance(v, str) and OBJECT_ID.match(v)]


ObjectIdStr = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{24}$", to_lower=True),
    Field(description="A 24-hex-digit ObjectId"),
]
IdList = Annotated[list[ObjectIdStr], Field(min_length=1), AfterValidator(_check_id_list)]
Timezone = Annotated[str, AfterValidator(_check_timezone)]

TIMEZONE_DESCRIPTION = (
    "IANA timezone for the date range, the day / week / month buckets and the datetimes printed "
    "in the file"
)
DEPARTMENTS_DESCRIPTION = (
    "Only these departments (ObjectIds; at most MAX_FILTER_IDS, default 500). Omitted: every "
    "department you may report on"
)
COURSES_DESCRIPTION = (
    "Only these courses (ObjectIds; at most MAX_FILTER_IDS, default 500). Omitted: every course "
    "you may report on"
)
SUB_DEPARTMENTS_DESCRIPTION = (
    "A departmentIds filter also covers every department under the named ones (false: only the "
    "named departments themselves)"
)
DATE_RANGE_DESCRIPTION = "A date-range preset, or custom from / to dates (both included)"


def default_date_range() -> DateRange:
    return DateRange(preset=DatePreset.LAST_30_DAYS)


class ReportParameters(ApiInput):
    """Base of every parameters model: `timezone` is common to all report types."""

    timezone: Timezone = Field(default="UTC", description=TIMEZONE_DESCRIPTION)


# ---------------------------------------------------------------------------------------------
# Resolved parameters: the typed form of what a job stores as `resolvedParameters`. Field order
# is the stored key order: reportType, timezone, now, then dateRange, departmentIds, courseIds
# where the type has them, then the type's own options.


class ResolvedParameters(StoredModel):
    report_type: str
    timezone: str = "UTC"
    now: UtcDateTime


class RangeResolved(ResolvedParameters):
    """Resolved parameters with a date range."""

    date_range: StoredRange


class FilteredRangeResolved(RangeResolved):
    """Resolved parameters with a date range and the departments / courses filters (None: every
    one in scope)."""

    department_ids: list[str] | None = None
    course_ids: list[str] | None = None
    include_sub_departments: bool = True


def filter_ids(params: object, name: str) -> list[str] | None:
    """A parameters model's departments / courses filter (None when it has none)."""
    value = getattr(params, name, None)
    return list(value) if value is not None else None
