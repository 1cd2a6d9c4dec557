"""Metadata API (API-ISS-033): the report form's endpoints under /api/v1/reports/metadata, and
the list of error codes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query

from app.common.schemas import Page
from app.deps import SettingsDep
from app.error_codes import ERROR_CODES
from app.errors import problem_responses
from app.lookups.schemas import LookupCategoryOut, LookupValueOut
from app.reports.deliveries.schemas import DeliveryOptionsOut
from app.reports.metadata import service
from app.reports.metadata.schemas import (
    DatePresetList,
    ErrorCodeOut,
    FilterOption,
    FormatOut,
    ReportTypeDetail,
    ReportTypeSummary,
)
from app.security import CurrentPrincipal

router = APIRouter(prefix="/api/v1/reports/metadata", tags=["report-metadata"])


class FilterKind(StrEnum):
    DEPARTMENTS = "departments"
    COURSES = "courses"
    USERS = "users"


@router.get(
    "/report-types",
    name="metadata_report_types",
    summary="The report types your role may run",
    response_model=list[ReportTypeSummary],
    responses=problem_responses(401),
)
async def list_report_types(principal: CurrentPrincipal) -> list[ReportTypeSummary]:
    return service.report_types(principal)


@router.get(
    "/report-types/{key}",
    name="metadata_report_type",
    summary="One report type: parameter JSON Schema, columns, formats and limits",
    response_model=ReportTypeDetail,
    responses=problem_responses(401, 403, 404),
)
async def get_report_type(
    key: str, principal: CurrentPrincipal, settings: SettingsDep
) -> ReportTypeDetail:
    return await service.report_type(principal, key, settings)


@router.get(
    "/formats",
    name="metadata_formats",
    summary="Output formats with their content types and row limits",
    description=(
        "A PDF holds at most `maxRows` detail rows: past that it holds the first rows and says "
        "on page one that it is truncated (CSV and Excel hold every row up to their limits)."
    ),
    response_model=list[FormatOut],
    responses=problem_responses(401),
)
async def list_formats(principal: CurrentPrincipal, settings: SettingsDep) -> list[FormatOut]:
    return await service.formats(settings)


@router.get(
    "/lookups",
    name="metadata_lookup_categories",
    summary="Lookup categories (controlled vocabularies)",
    response_model=list[LookupCategoryOut],
    responses=problem_responses(401),
)
async def list_lookup_categories(principal: CurrentPrincipal) -> list[LookupCategoryOut]:
    return await service.lookup_categories()


@router.get(
    "/lookups/{category}",
    name="metadata_lookup_values",
    summary="The values of one lookup category, in display order",
    response_model=list[LookupValueOut],
    responses=problem_responses(401, 404, 422),
)
async def list_lookup_values(
    category: str,
    principal: CurrentPrincipal,
    include_inactive: Annotated[
        bool,
        Query(alias="includeInactive", description="Also values retired for new data"),
    ] = False,
) -> list[LookupValueOut]:
    return await service.lookup_values(category, include_inactive)


@router.get(
    "/date-range-presets",
    name="metadata_date_range_presets",
    summary="Date-range presets with the exact range each resolves to now",
    description=(
        "Each preset is resolved at the current time in `timezone`: `from` / `to` are local "
        "days (both included), `start` / `end` the half-open UTC interval. `custom` has no "
        "range of its own."
    ),
    response_model=DatePresetList,
    responses=problem_responses(401, 422),
)
async def list_date_presets(
    principal: CurrentPrincipal,
    timezone: Annotated[
        str, Query(max_length=64, description="IANA timezone", examples=["Europe/Berlin"])
    ] = "UTC",
) -> DatePresetList:
    return service.date_presets(timezone)


@router.get(
    "/filter-options/{kind}",
    name="metadata_filter_options",
    summary="Departments, courses or users you may filter reports on",
    description=(
        "Limited to your data scope: admins see all; managers their departments (with "
        "sub-departments), the courses owned by or taken in them, and their people; "
        "instructors their courses and the departments and learners in them; learners "
        "themselves and their own courses. Sorted by name (courses by code)."
    ),
    response_model=Page[FilterOption],
    responses=problem_responses(401, 422),
)
async def list_filter_options(
    kind: FilterKind,
    principal: CurrentPrincipal,
    q: Annotated[str | None, Query(max_length=100, description="Search in names and codes")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[FilterOption]:
    items, next_cursor = await service.filter_options(
        principal, kind.value, q=q, limit=limit, cursor=cursor
    )
    return Page[FilterOption](items=items, next_cursor=next_cursor)


@router.get(
    "/delivery-options",
    name="metadata_delivery_options",
    summary="What schedules and jobs may ask for delivery, and its limits",
    response_model=DeliveryOptionsOut,
    responses=problem_responses(401),
)
async def delivery_options(
    principal: CurrentPrincipal, settings: SettingsDep
) -> DeliveryOptionsOut:
    return DeliveryOptionsOut.from_settings(settings)


@router.get(
    "/error-codes",
    name="metadata_error_codes",
    summary="Every error code: its HTTP status, title and when it happens",
    description=(
        "The `code` of every problem+json answer is one of these (`<noun>-<problem>`, "
        "kebab-case), as is a failed job's `error.code`. docs/errors.md holds the same list."
    ),
    response_model=list[ErrorCodeOut],
    responses=problem_responses(401),
)
async def error_codes(principal: CurrentPrincipal) -> list[ErrorCodeOut]:
    return [ErrorCodeOut.of(entry) for entry in ERROR_CODES.values()]
