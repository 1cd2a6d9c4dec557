"""Date-range presets and custom ranges resolve to half-open UTC intervals of whole local days."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from app.reports.dates import (
    DatePreset,
    DateRange,
    days_to_range,
    preset_catalogue,
    resolve_preset,
)
from tests.factories import dt


def _range(preset: str, tz: str, now: object) -> tuple[str, str, str, str]:
    r = resolve_preset(preset, tz, now)  # type: ignore[arg-type]
    doc = r.to_document()
    return doc["from"], doc["to"], doc["start"], doc["end"]


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("today", ("2026-05-14", "2026-05-14")),
        ("yesterday", ("2026-05-13", "2026-05-13")),
        ("last-7-days", ("2026-05-08", "2026-05-14")),
        ("last-30-days", ("2026-04-15", "2026-05-14")),
        ("this-month", ("2026-05-01", "2026-05-14")),
        ("last-month", ("2026-04-01", "2026-04-30")),
        ("this-quarter", ("2026-04-01", "2026-05-14")),
        ("last-quarter", ("2026-01-01", "2026-03-31")),
        ("year-to-date", ("2026-01-01", "2026-05-14")),
        ("last-year", ("2025-01-01", "2025-12-31")),
    ],
)
def test_presets_in_utc(preset: str, expected: tuple[str, str]) -> None:
    first, last, start, end = _range(preset, "UTC", dt(2026, 5, 14, 15, 30))
    assert (first, last) == expected
    assert start == f"{first}T00:00:00Z"
    next_day = date.fromisoformat(last) + timedelta(days=1)
    assert end == f"{next_day.isoformat()}T00:00:00Z"


def test_last_7_days_is_seven_local_days_ending_today() -> None:
    r = resolve_preset(DatePreset.LAST_7_DAYS, "UTC", dt(2026, 5, 14, 0, 0))
    assert r.days == 7
    assert r.end - r.start == timedelta(days=7)


def test_local_day_differs_from_utc_day() -> None:
    # 2026-03-01 02:00 UTC is still 28 February in Los Angeles (UTC-8) ...
    assert _range("today", "America/Los_Angeles", dt(2026, 3, 1, 2)) == (
        "2026-02-28",
        "2026-02-28",
        "2026-02-28T08:00:00Z",
        "2026-03-01T08:00:00Z",
    )
    # ... and already 1 March in Tokyo (UTC+9) at 2026-02-28 20:00 UTC.
    assert _range("this-month", "Asia/Tokyo", dt(2026, 2, 28, 20)) == (
        "2026-03-01",
        "2026-03-01",
        "2026-02-28T15:00:00Z",
        "2026-03-01T15:00:00Z",
    )
    # last-month seen from Tokyo on 1 March: all of February, local midnights.
    assert _range("last-month", "Asia/Tokyo", dt(2026, 2, 28, 20)) == (
        "2026-02-01",
        "2026-02-28",
        "2026-01-31T15:00:00Z",
        "2026-02-28T15:00:00Z",
    )


def test_berlin_spring_forward_day_has_23_hours() -> None:
    r = days_to_range(date(2026, 3, 29), date(2026, 3, 29), "Europe/Berlin")
    assert r.to_document()["start"] == "2026-03-28T23:00:00Z"
    assert r.to_document()["end"] == "2026-03-29T22:00:00Z"
    assert r.end - r.start == timedelta(hours=23)
    # March as a whole starts in CET (+1) and ends in CEST (+2).
    march = days_to_range(date(2026, 3, 1), date(2026, 3, 31), "Europe/Berlin")
    assert march.to_document()["start"] == "2026-02-28T23:00:00Z"
    assert march.to_document()["end"] == "2026-03-31T22:00:00Z"


def test_new_york_dst_days() -> None:
    spring = resolve_preset("today", "America/New_York", dt(2026, 3, 8, 12))
    assert (spring.start, spring.end) == (dt(2026, 3, 8, 5), dt(2026, 3, 9, 4))
    autumn = resolve_preset("today", "America/New_York", dt(2026, 11, 1, 12))
    assert (autumn.start, autumn.end) == (dt(2026, 11, 1, 4), dt(2026, 11, 2, 5))
    assert autumn.end - autumn.start == timedelta(hours=25)
    # The week across the spring change is 7 local days, 167 hours.
    week = resolve_preset("last-7-days", "America/New_York", dt(2026, 3, 10, 12))
    assert week.end - week.start == timedelta(days=7, hours=-1)


def test_quarter_and_year_boundaries() -> None:
    assert _range("last-quarter", "UTC", dt(2026, 1, 2))[:2] == ("2025-10-01", "2025-12-31")
    assert _range("this-quarter", "UTC", dt(2026, 12, 31, 23))[:2] == ("2026-10-01", "2026-12-31")
    assert _range("last-month", "UTC", dt(2026, 1, 15))[:2] == ("2025-12-01", "2025-12-31")
    assert _range("yesterday", "UTC", dt(2026, 1, 1, 0, 5))[:2] == ("2025-12-31", "2025-12-31")


def test_custom_range_includes_its_last_day_in_full() -> None:
    model = DateRange.model_validate({"preset": "custom", "from": "2026-01-01", "to": "2026-01-31"})
    r = model.resolve("America/Los_Angeles", dt(2026, 5, 1))
    assert r.start == dt(2026, 1, 1, 8)
    assert r.end == dt(2026, 2, 1, 8)  # 1 February 00:00 local, excluded
    one_day = DateRange.model_validate(
        {"preset": "custom", "from": "2026-03-29", "to": "2026-03-29"}
    )
    assert one_day.resolve("UTC", dt(2026, 5, 1)).end == dt(2026, 3, 30)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"preset": "custom", "to": "2026-01-31"}, "from", "required when preset is custom"),
        ({"preset": "custom", "from": "2026-01-31"}, "to", "required when preset is custom"),
        ({"preset": "today", "from": "2026-01-01"}, "from", "only allowed when preset is custom"),
        ({"preset": "last-month", "to": "2026-01-01"}, "to", "only allowed when preset is custom"),
        (
            {"preset": "custom", "from": "2026-02-01", "to": "2026-01-31"},
            "to",
            "must be on or after from",
        ),
        ({"preset": "custom", "from": "2000-01-01", "to": "2026-01-31"}, "to", "at most 3660"),
        ({"preset": "next-week"}, "preset", "Input should be"),
        ({"preset": "today", "until": "2026-01-01"}, "until", "Extra inputs"),
    ],
)
def test_date_range_validation_names_the_field(
    body: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        DateRange.model_validate(body)
    errors = {".".join(str(p) for p in e["loc"]): e["msg"] for e in info.value.errors()}
    assert field in errors
    assert message in errors[field]


def test_preset_catalogue_lists_every_preset() -> None:
    items = preset_catalogue("Europe/Berlin", dt(2026, 3, 29, 12))
    assert [i["preset"] for i in items] == [p.value for p in DatePreset]
    by_key = {i["preset"]: i for i in items}
    assert by_key["today"]["start"] == "2026-03-28T23:00:00Z"
    assert by_key["today"]["end"] == "2026-03-29T22:00:00Z"
    assert by_key["today"]["label"] == "Today"
    assert by_key["custom"]["start"] is None and by_key["custom"]["from"] is None
    assert all(i["timezone"] == "Europe/Berlin" for i in items)
