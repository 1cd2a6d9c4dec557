"""Metadata API (API-ISS-033): the report form's endpoints under /api/v1/reports/metadata, and
the list of error codes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.common.pagination import sort_query
from app.common.schemas import Page
from app.deps import RequestLocale, SettingsDep
from app.error_codes import ERROR_CODES
from app.errors import problem_responses
from app.lookups.schemas import LookupCategoryOut, LookupValueOut
from app.reports.deliveries.schemas import DeliveryOptionsOut
from app.reports.metadata import filter_options, service
from app.reports.metadata.schemas import (
    DatePresetList,
    ErrorCodeOut,
    FilterKind,
    FilterOption,
    FormatOut,
    ReportTypeDetail,
    ReportTypeSummary,
)
from app.security import CurrentPrincipal

router = APIRouter(prefix="/api/v1/reports/metadata", tags=["report-metadata"])


@router.get(
    "/report-types",
    name="metadata_report_types",
    summary="The report types your role may run",
    response_model=list[ReportTypeSummary],
    responses=problem_responses(401, 422),
)
async def list_report_types(
    principal: CurrentPrincipal, locale: RequestLocale
) -> list[ReportTypeSummary]:
    return service.report_types(principal, locale)


@router.get(
    "/report-types/{key}",
    name="metadata_report_type",
    summary="One report type: parameter JSON Schema, columns, formats and limits",
    response_model=ReportTypeDetail,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_report_type(
    key: str, principal: CurrentPrincipal, settings: SettingsDep, locale: RequestLocale
) -> ReportTypeDetail:
    return await service.report_type(principal, key, settings, locale)


@router.get(
    "/formats",
    name="metadata_formats",
    summary="Output formats with their content types and row limits",
    description=(
        "A PDF holds at most `maxRows` detail rows: past that it holds the first rows and says "
        "on page one that it is truncated (CSV and Excel hold every row up to their limits)."
    ),
    response_model=list[FormatOut],
    responses=problem_responses(401, 422),
)
async def list_formats(
    principal: CurrentPrincipal, settings: SettingsDep, locale: RequestLocale
) -> list[FormatOut]:
    return await service.formats(settings, locale)


@router.get(
    "/lookups",
    name="metadata_lookup_categories",
    summary="Lookup categories (controlled vocabularies)",
    response_model=list[LookupCategoryOut],
    responses=problem_responses(401, 422),
)
async def list_lookup_categories(
    principal: CurrentPrincipal, locale: RequestLocale
) -> list[LookupCategoryOut]:
    return await service.lookup_categories(locale)


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
    locale: RequestLocale,
    include_inactive: Annotated[
        bool,
        Query(alias="includeInactive", description="Also values retired for new data"),
    ] = False,
) -> list[LookupValueOut]:
    return await service.lookup_values(category, include_inactive, locale)


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
    locale: RequestLocale,
    timezone: Annotated[
        str, Query(max_length=64, description="IANA timezone", examples=["Europe/Berlin"])
    ] = "UTC",
) -> DatePresetList:
    return service.date_presets(timezone, locale=locale)


FILTER_SORT_TOKENS = list(
    dict.fromkeys(t for sorting in filter_options.SORTINGS.values() for t in sorting.tokens)
)
FILTER_SORT_DESCRIPTION = (
    "`departments`: `name` (default) or `code`; `courses`: `code` (default) or `title`; "
    "`users`: `name` (default) or `email`. `-field` for descending; names and titles by code "
    "point (upper case before lower); ties broken by id. A field of another kind is a 422 "
    "listing the allowed ones; a cursor made for one sort is refused with another."
)


@router.get(
    "/filter-options/{kind}",
    name="metadata_filter_options",
    summary="Departments, courses or users you may filter reports on, cascading",
    description=(
        "Limited to your data scope: admins see all; managers their departments (with "
        "sub-departments), the courses owned by or taken in them, and their people; "
        "instructors their courses and the departments and learners in them; learners "
        "themselves, their departments and their own courses.\n\n"
        "Cascading, as a report form fills in: `departmentIds` narrows courses to those with "
        "enrollments (that you may see) in those departments, users to the people of those "
        "departments, departments to those; each with its sub-departments unless "
        "`includeSubDepartments=false` (the rule of the report types). `courseIds` narrows "
        "users to those enrolled in one of the courses (in the chosen departments, when both "
        "are given) and departments to those the courses are taken in. Ids you may not filter "
        "on are a 403 naming them, as in a report's parameters.\n\n"
        "Departments come as your tree: `parentId` (the nearest department above that you may "
        "see), `level`, `childCount`, and counts of their own people and enrollments; list one "
        "level with `parentId` (`root` for the top). Searchable with `q`; paged and sorted as "
        "every list, with `total`."
    ),
    response_model=Page[FilterOption],
    responses=problem_responses(401, 403, 422),
)
async def list_filter_options(
    kind: FilterKind,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    q: Annotated[str | None, Query(max_length=100, description="Search in names and codes")] = None,
    department_ids: Annotated[
        list[str] | None,
        Query(
            alias="departmentIds",
            description="Department ids, repeated or comma-separated: narrow to these "
            "departments (and their sub-departments)",
        ),
    ] = None,
    include_sub_departments: Annotated[
        bool,
        Query(
            alias="includeSubDepartments",
            description="`departmentIds` covers each department's sub-departments too",
        ),
    ] = True,
    course_ids: Annotated[
        list[str] | None,
        Query(
            alias="courseIds",
            description="Course ids, repeated or comma-separated (departments and users only)",
        ),
    ] = None,
    parent_id: Annotated[
        str | None,
        Query(
            alias="parentId",
            max_length=64,
            description="Departments only: those directly beneath this department in your "
            "tree, or `root` for the top of it",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[
        str | None,
        sort_query(FILTER_SORT_DESCRIPTION, FILTER_SORT_TOKENS),
    ] = None,
) -> Page[FilterOption]:
    listed = await filter_options.filter_options(
        settings,
        principal,
        kind,
        filter_options.OptionFilters(
            q=q,
            department_ids=department_ids,
            include_sub_departments=include_sub_departments,
            course_ids=course_ids,
            parent_id=parent_id,
        ),
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return listed.as_page(listed.items)


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
