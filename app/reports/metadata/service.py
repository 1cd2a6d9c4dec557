"""Metadata: report types the caller may run, formats and limits, lookup values and date-range
presets (the filter values inside the caller's data scope: `filter_options.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.common.time import is_timezone, utcnow
from app.config import Settings
from app.errors import Forbidden, NotFound, ValidationFailed
from app.i18n import DEFAULT_LOCALE, translate, use_locale
from app.lookups.catalog import CATEGORIES
from app.lookups.models import LookupValue
from app.lookups.schemas import LookupCategoryOut, LookupValueOut
from app.reports.dates import preset_catalogue
from app.reports.formats import FORMATS, get_format
from app.reports.metadata.schemas import (
    ChangeFieldOut,
    ChangeReportOut,
    ChartDefinitionOut,
    ColumnOut,
    DatePresetList,
    DatePresetOut,
    FigureOut,
    FormatOut,
    Limits,
    MetricOut,
    ModeOut,
    ReportTypeDetail,
    ReportTypeSummary,
)
from app.reports.types import REPORT_TYPES, Column, get_report_type
from app.reports.types.alertable import alertable_metrics
from app.reports.types.changes import change_spec
from app.reports.types.choice import mode_group_keys
from app.security import Principal


def _label(value: LookupValue, locale: str) -> str:
    """A stored lookup value's label in `locale`: its own for it, else the default translated."""
    if locale == DEFAULT_LOCALE:
        return value.label
    return value.labels.get(locale) or translate(locale, value.label)


def _description(value: LookupValue | None, locale: str) -> str | None:
    if value is None or not value.description:
        return None
    return translate(locale, value.description)


async def formats(settings: Settings, locale: str = DEFAULT_LOCALE) -> list[FormatOut]:
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
                label=_label(value, locale) if value else translate(locale, spec.label),
                description=_description(value, locale),
                content_type=spec.content_type,
                file_extension=spec.extension,
                max_rows=spec.max_rows(settings),
                truncates=spec.truncates,
            )
        )
    return out


def report_types(principal: Principal, locale: str = DEFAULT_LOCALE) -> list[ReportTypeSummary]:
    return [
        ReportTypeSummary(
            key=d.key,
            name=translate(locale, d.name),
            description=translate(locale, d.description),
            formats=list(d.formats),
            default_sort=list(d.default_sort),
        )
        for d in REPORT_TYPES.values()
        if d.allows(principal)
    ]


async def report_type(
    principal: Principal, key: str, settings: Settings, locale: str = DEFAULT_LOCALE
) -> ReportTypeDetail:
    definition = get_report_type(key)
    if not definition.allows(principal):
        raise Forbidden(
            f"The role {principal.role.value!r} may not run {key} reports.",
            code="report-type-not-allowed",
        )
    all_formats = {f.code: f for f in await formats(settings, locale)}
    with use_locale(locale):  # the summary figures' labels and definitions in `locale`
        shapes = definition.modes()
        alertable = [
            MetricOut(key=m.key, label=m.label, type=m.type, unit=m.unit, description=m.definition)
            for m in alertable_metrics(definition)
        ]
    modes = [
        ModeOut(
            parameters=mode.parameters,
            columns=[
                _column(c, locale, mode_group_keys(definition, mode.parameters))
                for c in mode.columns
            ],
            summary=[
                FigureOut(key=f.key, label=f.label, type=f.type, description=f.definition)
                for f in mode.summary
            ],
        )
        for mode in shapes
    ]
    return ReportTypeDetail(
        key=definition.key,
        name=translate(locale, definition.name),
        description=translate(locale, definition.description),
        parameters_schema=definition.parameters_schema(),
        columns=modes[0].columns,
        summary=modes[0].summary,
        modes=modes,
        alertable_metrics=alertable,
        change_report=_change_report(definition.key),
        charts=[
            ChartDefinitionOut(
                key=c.key,
                title=translate(locale, c.title),
                description=translate(locale, c.description),
                type=c.kind.value,
                when=c.when,
            )
            for c in definition.charts
        ],
        default_sort=list(definition.default_sort),
        formats=[all_formats[f] for f in definition.formats if f in all_formats],
        roles=[r.value for r in definition.roles],
        limits=Limits(
            max_rows_per_format={f: get_format(f).max_rows(settings) for f in definition.formats},
            max_date_range_days=settings.max_date_range_days,
            max_filter_ids=settings.max_filter_ids,
        ),
    )


def _column(column: Column, locale: str, group_keys: tuple[str, ...] = ()) -> ColumnOut:
    description = translate(locale, column.description)
    return ColumnOut(
        key=column.key,
        label=translate(locale, column.label),
        type=column.type,
        description=description,
        lookup=column.lookup,
        definition=description,
        default_visible=True,  # every column of a run is shown unless the request chooses
        group_key=column.key in group_keys,
        csv_only=column.csv_only,
    )


async def lookup_categories(locale: str = DEFAULT_LOCALE) -> list[LookupCategoryOut]:
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
            label=translate(
                locale,
                CATEGORIES.get(name, {}).get("label", name.replace("-", " ").capitalize()),
            ),
            count=counts.get(name, 0),
        )
        for name in names
        if name in counts
    ]


async def lookup_values(
    category: str, include_inactive: bool, locale: str = DEFAULT_LOCALE
) -> list[LookupValueOut]:
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
            label=_label(v, locale),
            labels=v.labels,
            description=v.description,
            sort_order=v.sort_order,
            is_active=v.is_active,
            metadata=v.metadata,
        )
        for v in values
    ]


def date_presets(
    timezone: str, now: datetime | None = None, locale: str = DEFAULT_LOCALE
) -> DatePresetList:
    if not is_timezone(timezone):
        raise ValidationFailed.one(
            "query.timezone", f"{timezone!r} is not an IANA timezone such as Europe/Berlin"
        )
    now = now or utcnow()
    return DatePresetList(
        timezone=timezone,
        now=now,
        items=[
            DatePresetOut.model_validate(item) for item in preset_catalogue(timezone, now, locale)
        ],
    )


def _change_report(report_type: str) -> ChangeReportOut | None:
    spec = change_spec(report_type)
    if spec is None:
        return None
    return ChangeReportOut(
        key=list(spec.key_columns),
        fields=[
            ChangeFieldOut(key=f.key, label=f.label, banded=f.band is not None) for f in spec.fields
        ],
        transitions=[t.words for t in spec.transitions],
    )
