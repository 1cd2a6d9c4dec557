"""Date-range presets and custom ranges -> half-open UTC intervals `[start, end)`.

A range is always a whole number of *local* days in the report's IANA timezone: it starts at
00:00 local on its first day and ends at 00:00 local on the day after its last day. Local
midnights are turned into UTC with `zoneinfo`, so a range that crosses a daylight-saving change
is 23 or 25 hours longer or shorter than a multiple of 24 hours, as it should be.

Presets, for "today" = the local date of `now` in the timezone:

| preset | local days (both included) |
|---|---|
| today | today |
| yesterday | yesterday |
| last-7-days | the 7 days ending today, today included (today − 6 … today) |
| last-30-days | the 30 days ending today, today included (today − 29 … today) |
| this-month | the 1st of this month … today (month to date) |
| last-month | the whole previous calendar month |
| this-quarter | the first day of this calendar quarter … today (quarter to date) |
| last-quarter | the whole previous calendar quarter |
| year-to-date | 1 January … today |
| last-year | the whole previous calendar year |
| custom | `from` … `to` |

"this-month" and "this-quarter" stop at the end of today, like "year-to-date", so no preset
reaches into the future and a report run mid-month shows the month so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from app.common.schemas import ApiInput
from app.common.time import EARLIEST_DATE, LATEST_DATE, WINDOW, zone
from app.config import Settings
from app.i18n import DEFAULT_LOCALE, N_, translate
from app.lookups import validation

Limit = Literal["max_filter_ids", "max_date_range_days"]


def _in_window(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(WINDOW)
    return value


BoundedDate = Annotated[date, AfterValidator(_in_window)]
"""A date inside the supported window (1970-01-01 … 2100-12-31)."""


class DatePreset(StrEnum):
    """The date-range-preset lookup codes (kebab-case)."""

    TODAY = "today"
    YESTERDAY = "yesterday"
    LAST_7_DAYS = "last-7-days"
    LAST_30_DAYS = "last-30-days"
    THIS_MONTH = "this-month"
    LAST_MONTH = "last-month"
    THIS_QUARTER = "this-quarter"
    LAST_QUARTER = "last-quarter"
    YEAR_TO_DATE = "year-to-date"
    LAST_YEAR = "last-year"
    CUSTOM = "custom"


PRESET_LABELS: dict[DatePreset, str] = {
    DatePreset.TODAY: N_("Today"),
    DatePreset.YESTERDAY: N_("Yesterday"),
    DatePreset.LAST_7_DAYS: N_("Last 7 days"),
    DatePreset.LAST_30_DAYS: N_("Last 30 days"),
    DatePreset.THIS_MONTH: N_("This month"),
    DatePreset.LAST_MONTH: N_("Last month"),
    DatePreset.THIS_QUARTER: N_("This quarter"),
    DatePreset.LAST_QUARTER: N_("Last quarter"),
    DatePreset.YEAR_TO_DATE: N_("Year to date"),
    DatePreset.LAST_YEAR: N_("Last year"),
    DatePreset.CUSTOM: N_("Custom"),
}


@dataclass(frozen=True)
class ResolvedRange:
    """A range of whole local days and the half-open UTC interval it covers."""

    preset: DatePreset
    first_day: date  # local, included
    last_day: date  # local, included
    start: datetime  # UTC, included: first_day 00:00 local
    end: datetime  # UTC, excluded: the day after last_day, 00:00 local
    timezone: str

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def to_document(self) -> dict[str, Any]:
        """JSON-able form stored in a job's resolved parameters."""
        return {
            "preset": self.preset.value,
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
            "timezone": self.timezone,
        }


def limits_context(settings: Settings | None) -> dict[str, int]:
    """The validation context carrying the configured limits into the parameter validators;
    without settings, the defaults declared on `Settings` (never the environment)."""
    return {name: _setting(settings, name) for name in ("max_filter_ids", "max_date_range_days")}


def configured_limit(info: ValidationInfo, name: Limit) -> int:
    """A limit from the validation context (see `limits_context`), else its declared default."""
    context = info.context
    if isinstance(context, Mapping) and name in context:
        return int(context[name])
    return _setting(None, name)


def _setting(settings: Settings | None, name: str) -> int:
    if settings is not None:
        return int(getattr(settings, name))
    return int(Settings.model_fields[name].default)


def iso_utc(value: datetime) -> str:
    """`2026-03-01T05:00:00Z` (what resolved parameters store)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso_utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _stored_instant(value: Any) -> Any:
    if isinstance(value, str):
        return parse_iso_utc(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


# An instant as resolved parameters store it: `2026-03-01T05:00:00Z` in JSON, aware UTC in Python.
UtcDateTime = Annotated[
    datetime, BeforeValidator(_stored_instant), PlainSerializer(iso_utc, return_type=str)
]


class StoredModel(BaseModel):
    """A typed view of a JSON document stored on a job (camelCase keys). Keys it does not know
    are ignored and missing optional ones take their defaults, so documents stored by earlier
    versions keep working; `to_document` gives back the stored form."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class StoredRange(StoredModel):
    """A resolved date range as stored in a job's resolved parameters (`ResolvedRange`)."""

    preset: str
    from_: date = Field(alias="from")
    to: date
    start: UtcDateTime
    end: UtcDateTime
    timezone: str

    @classmethod
    def of(cls, resolved: ResolvedRange) -> StoredRange:
        return cls(
            preset=resolved.preset.value,
            from_=resolved.first_day,
            to=resolved.last_day,
            start=resolved.start,
            end=resolved.end,
            timezone=resolved.timezone,
        )


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `tz`. When midnight falls in a DST gap (a few
    zones switch at 00:00) this is the first instant that exists on that day."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_today(now: datetime, tz: ZoneInfo) -> date:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(tz).date()


def days_to_range(
    first_day: date, last_day: date, timezone: str, preset: DatePreset = DatePreset.CUSTOM
) -> ResolvedRange:
    """Local days `first_day … last_day` (both included) -> `[start, end)` in UTC."""
    tz = zone(timezone)
    return ResolvedRange(
        preset=preset,
        first_day=first_day,
        last_day=last_day,
        start=local_midnight(first_day, tz),
        end=local_midnight(last_day + timedelta(days=1), tz),
        timezone=timezone,
    )


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_before(first_of_month: date) -> date:
    return (first_of_month - timedelta(days=1)).replace(day=1)


def preset_days(preset: DatePreset, today: date) -> tuple[date, date]:
    """First and last local day (both included) of a preset, given the local date today."""
    if preset == DatePreset.TODAY:
        return today, today
    if preset == DatePreset.YESTERDAY:
        day = today - timedelta(days=1)
        return day, day
    if preset == DatePreset.LAST_7_DAYS:
        return today - timedelta(days=6), today
    if preset == DatePreset.LAST_30_DAYS:
        return today - timedelta(days=29), today
    if preset == DatePreset.THIS_MONTH:
        return today.replace(day=1), today
    if preset == DatePreset.LAST_MONTH:
        this_month = today.replace(day=1)
        return _month_before(this_month), this_month - timedelta(days=1)
    if preset == DatePreset.THIS_QUARTER:
        return _quarter_start(today), today
    if preset == DatePreset.LAST_QUARTER:
        this_quarter = _quarter_start(today)
        previous = _quarter_start(this_quarter - timedelta(days=1))
        return previous, this_quarter - timedelta(days=1)
    if preset == DatePreset.YEAR_TO_DATE:
        return date(today.year, 1, 1), today
    if preset == DatePreset.LAST_YEAR:
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    raise ValueError("a custom range needs its from and to dates")


def resolve_preset(preset: DatePreset | str, timezone: str, now: datetime) -> ResolvedRange:
    """Resolves a (non-custom) preset in `timezone` at `now`."""
    preset = DatePreset(preset)
    first, last = preset_days(preset, local_today(now, zone(timezone)))
    return days_to_range(first, last, timezone, preset)


class DateRange(ApiInput):
    """A preset, or `custom` with `from` and `to` (both included, local dates)."""

    preset: DatePreset = Field(
        description="A date-range-preset code; `custom` needs `from` and `to`"
    )
    from_: BoundedDate | None = Field(
        default=None,
        alias="from",
        description="First day (local date, included); only with preset `custom`",
    )
    to: BoundedDate | None = Field(
        default=None,
        description="Last day (local date, included in full); only with preset `custom`",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"preset": "last-30-days"},
                {"preset": "custom", "from": "2026-01-01", "to": "2026-01-31"},
            ]
        }
    )

    @model_validator(mode="before")
    @classmethod
    def _present_bounds(cls, data: Any) -> Any:
        # Missing bounds become explicit nulls so their validators run and an error names the
        # JSON field (`from` / `to`), not the Python attribute.
        if isinstance(data, dict):
            data = dict(data)
            if "from" not in data and "from_" not in data:
                data["from"] = None
            data.setdefault("to", None)
        return data

    @field_validator("preset")
    @classmethod
    def _active_preset(cls, value: DatePreset) -> DatePreset:
        # The lookup table decides which presets are offered (`custom` is structural).
        validation.check_code("date-range-preset", value.value)
        return value

    @field_validator("from_")
    @classmethod
    def _check_from(cls, value: date | None, info: ValidationInfo) -> date | None:
        _check_presence(info.data.get("preset"), value)
        return value

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: date | None, info: ValidationInfo) -> date | None:
        _check_presence(info.data.get("preset"), value)
        first = info.data.get("from_")
        if value is not None and first is not None:
            if first > value:
                raise ValueError(f"must be on or after from ({first.isoformat()})")
            limit = configured_limit(info, "max_date_range_days")
            span = (value - first).days + 1
            if span > limit:
                raise ValueError(f"the range spans {span} days; at most {limit} are allowed")
        return value

    def resolve(self, timezone: str, now: datetime) -> ResolvedRange:
        if self.preset == DatePreset.CUSTOM:
            assert self.from_ is not None and self.to is not None  # checked by the validators
            return days_to_range(self.from_, self.to, timezone)
        return resolve_preset(self.preset, timezone, now)


def _check_presence(preset: DatePreset | None, value: date | None) -> None:
    if preset is None:  # the preset itself was invalid; that error is reported already
        return
    if preset == DatePreset.CUSTOM and value is None:
        raise ValueError("required when preset is custom")
    if preset != DatePreset.CUSTOM and value is not None:
        raise ValueError("only allowed when preset is custom")


def preset_catalogue(
    timezone: str, now: datetime, locale: str = DEFAULT_LOCALE
) -> list[dict[str, Any]]:
    """Every preset with the range it resolves to now in `timezone` (the metadata API serves
    this). `custom` has no range of its own: its `from` / `to` / `start` / `end` are None."""
    tz = zone(timezone)
    today = local_today(now, tz)
    items: list[dict[str, Any]] = []
    for preset in DatePreset:
        if not validation.is_valid("date-range-preset", preset.value):
            continue  # switched off in the lookup table
        item: dict[str, Any] = {
            "preset": preset.value,
            "label": validation.label_of("date-range-preset", preset.value, locale)
            or translate(locale, PRESET_LABELS[preset]),
            "from": None,
            "to": None,
            "start": None,
            "end": None,
            "timezone": timezone,
        }
        if preset != DatePreset.CUSTOM:
            first, last = preset_days(preset, today)
            item.update(days_to_range(first, last, timezone, preset).to_document())
        items.append(item)
    return items
