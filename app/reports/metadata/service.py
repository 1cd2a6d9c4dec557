"""Metadata: report types the caller may run, formats and limits, lookup values, date-range
presets and the filter values inside the caller's data scope."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING

from app.common.schemas import decode_cursor, encode_cursor
from app.common.time import is_timezone, utcnow
from app.config import Settings
from app.errors import Forbidden, NotFound, ValidationFailed
from app.lookups.catalog import CATEGORIES
from app.lookups.models import LookupValue
from app.lookups.schemas import LookupCategoryOut, LookupValueOut
from app.platform.models import Course, Department, Enrollment, User
from app.reports.dates import preset_catalogue
from app.reports.formats import FORMATS, get_format
from app.reports.metadata.schemas import (
    ColumnOut,
    DatePresetList,
    DatePresetOut,
    FigureOut,
    FilterOption,
    FormatOut,
    Limits,
    ModeOut,
    ReportTypeDetail,
    ReportTypeSummary,
)
from app.reports.types import REPORT_TYPES, Column, get_report_type
from app.security import DataScope, Principal, resolve_scope


async def formats(settings: Settings) -> list[FormatOut]:
    """The formats in the order of their ``report-format`` lookup values; label and description
    from those values, everything else from the format's spec."""
    stored = {
        v.code: v
        for v in await LookupValue.find({"category": "report-format"}).sort("+sort_order").to_list()
    }
    codes = [c for c in stored if c in FORMATS] or list(FORMATS)
    out = []
    for code in codes:
        spec, value = FORMATS[code], stored.get(code)
        out.append(
            FormatOut(
                code=code,
                label=value.label if value else spec.label,
                description=value.description if value else None,
                content_type=spec.content_type,
                file_extension=spec.extension,
                max_rows=spec.max_rows(settings),
                truncates=spec.truncates,
            )
        )
    return out


def report_types(principal: Principal) -> list[ReportTypeSummary]:
    return [
        ReportTypeSummary(
            key=d.key,
            name=d.name,
            description=d.description,
            formats=list(d.formats),
            default_sort=list(d.default_sort),
        )
        for d in REPORT_TYPES.values()
        if d.allows(principal)
    ]


async def report_type(principal: Principal, key: str, settings: Settings) -> ReportTypeDetail:
    definition = get_report_type(key)
    if not definition.allows(principal):
        raise Forbidden(
            f"The role {principal.role.value!r} may not run {key} reports.",
            code="report-type-not-allowed",
        )
    all_formats = {f.code: f for f in await formats(settings)}
    modes = [
        ModeOut(
            parameters=mode.parameters,
            columns=[_column(c) for c in mode.columns],
            summary=[
                FigureOut(key=f.key, label=f.label, type=f.type, description=f.definition)
                for f in mode.summary
            ],
        )
        for mode in definition.modes()
    ]
    return ReportTypeDetail(
        key=definition.key,
        name=definition.name,
        description=definition.description,
        parameters_schema=definition.parameters_schema(),
        columns=modes[0].columns,
        summary=modes[0].summary,
        modes=modes,
        default_sort=list(definition.default_sort),
        formats=[all_formats[f] for f in definition.formats if f in all_formats],
        roles=[r.value for r in definition.roles],
        limits=Limits(
            max_rows_per_format={f: get_format(f).max_rows(settings) for f in definition.formats},
            max_date_range_days=settings.max_date_range_days,
            max_filter_ids=settings.max_filter_ids,
        ),
    )


def _column(column: Column) -> ColumnOut:
    return ColumnOut(
        key=column.key,
        label=column.label,
        type=column.type,
        description=column.description,
        lookup=column.lookup,
    )


async def lookup_categories() -> list[LookupCategoryOut]:
    counts: dict[str, int] = {}
    pipeline: list[dict[str, Any]] = [
        {"$group": {"_id": "$category", "active": {"$sum": {"$cond": ["$is_active", 1, 0]}}}}
    ]
    async for row in await LookupValue.get_pymongo_collection().aggregate(pipeline):
        counts[row["_id"]] = row["active"]
    names = list(CATEGORIES) + sorted(c for c in counts if c not in CATEGORIES)
    return [
        LookupCategoryOut(
            category=name,
            label=CATEGORIES.get(name, {}).get("label", name.replace("-", " ").capitalize()),
            count=counts.get(name, 0),
        )
        for name in names
        if name in counts
    ]


async def lookup_values(category: str, include_inactive: bool) -> list[LookupValueOut]:
    query: dict[str, Any] = {"category": category}
    if not include_inactive:
        query["is_active"] = True
    values = await LookupValue.find(query).sort("+sort_order", "+code").to_list()
    if not values and not await LookupValue.find_one({"category": category}):
        raise NotFound(
            f"There is no lookup category {category!r}.", code="lookup-category-not-found"
        )
    return [
        LookupValueOut(
            code=v.code,
            label=v.label,
            description=v.description,
            sort_order=v.sort_order,
            is_active=v.is_active,
            metadata=v.metadata,
        )
        for v in values
    ]


def date_presets(timezone: str, now: datetime | None = None) -> DatePresetList:
    if not is_timezone(timezone):
        raise ValidationFailed.one(
            "query.timezone", f"{timezone!r} is not an IANA timezone such as Europe/Berlin"
        )
    now = now or utcnow()
    return DatePresetList(
        timezone=timezone,
        now=now,
        items=[DatePresetOut.model_validate(item) for item in preset_catalogue(timezone, now)],
    )


# ---------------------------------------------------------------------------------------------
# Filter options


def _oids(ids: Iterable[Any]) -> list[ObjectId]:
    return [ObjectId(str(i)) for i in ids if i is not None and ObjectId.is_valid(str(i))]


async def _distinct(field: str, query: dict[str, Any]) -> list[ObjectId]:
    values = await Enrollment.get_pymongo_collection().distinct(field, query)
    return _oids(values)


async def _scope_query(kind: str, principal: Principal, scope: DataScope) -> dict[str, Any]:
    """Which documents of `kind` the caller may filter on. {} = all."""
    if scope.unrestricted:
        return {}
    if scope.user_id is not None:  # a learner: their own learning only
        if kind == "users":
            return {"_id": {"$in": _oids([scope.user_id])}}
        if kind == "courses":
            learner = _oids([scope.user_id])
            return {"_id": {"$in": await _distinct("course_id", {"user_id": {"$in": learner}})}}
        return {"_id": {"$in": _oids(principal.department_ids)}}
    if scope.department_ids is not None:
        departments = _oids(scope.department_ids)
        if kind == "departments":
            return {"_id": {"$in": departments}}
        if kind == "users":
            return {"department_id": {"$in": departments}}
        enrolled = await _distinct("course_id", {"department_id": {"$in": departments}})
        return {"$or": [{"department_id": {"$in": departments}}, {"_id": {"$in": enrolled}}]}
    courses = _oids(scope.course_ids or ())
    if kind == "courses":
        return {"_id": {"$in": courses}}
    field = "user_id" if kind == "users" else "department_id"
    return {"_id": {"$in": await _distinct(field, {"course_id": {"$in": courses}})}}


SORT_FIELD = {"departments": "name", "courses": "code", "users": "name"}
SEARCH_FIELDS = {
    "departments": ("name", "code"),
    "courses": ("code", "title"),
    "users": ("name", "email"),
}


async def filter_options(
    principal: Principal, kind: str, *, q: str | None, limit: int, cursor: str | None
) -> tuple[list[FilterOption], str | None]:
    scope = await resolve_scope(principal)
    clauses = [await _scope_query(kind, principal, scope)]
    if kind == "users":
        clauses.append({"status": "active"})
    if q:
        pattern = {"$regex": re.escape(q), "$options": "i"}
        clauses.append({"$or": [{f: pattern} for f in SEARCH_FIELDS[kind]]})
    sort_field = SORT_FIELD[kind]
    if cursor:
        try:
            raw = decode_cursor(cursor)
            last_key, raw_id = str(raw["k"]), str(raw["i"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationFailed.one("query.cursor", "not a valid cursor") from exc
        if not ObjectId.is_valid(raw_id):
            raise ValidationFailed.one("query.cursor", "not a valid cursor")
        last_id = ObjectId(raw_id)
        clauses.append(
            {
                "$or": [
                    {sort_field: {"$gt": last_key}},
                    {sort_field: last_key, "_id": {"$gt": last_id}},
                ]
            }
        )
    query = {"$and": [c for c in clauses if c]} if any(clauses) else {}
    model = {"departments": Department, "courses": Course, "users": User}[kind]
    docs = (
        await model.get_pymongo_collection()
        .find(query)
        .sort([(sort_field, ASCENDING), ("_id", ASCENDING)])
        .limit(limit + 1)
        .to_list()
    )
    next_cursor = None
    if len(docs) > limit:
        docs = docs[:limit]
        next_cursor = encode_cursor({"k": docs[-1][sort_field], "i": str(docs[-1]["_id"])})
    return [_option(kind, d) for d in docs], next_cursor


def _option(kind: str, doc: dict[str, Any]) -> FilterOption:
    if kind == "courses":
        return FilterOption(
            id=str(doc["_id"]),
            label=f"{doc['code']} — {doc['title']}",
            description=doc.get("category"),
        )
    if kind == "users":
        return FilterOption(id=str(doc["_id"]), label=doc["name"], description=doc.get("email"))
    return FilterOption(id=str(doc["_id"]), label=doc["name"], description=doc.get("code"))
