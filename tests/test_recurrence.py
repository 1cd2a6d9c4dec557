"""Next-run computation: every frequency, over DST changes in two timezones, month ends and
leap years. Pure functions: no servers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from app.reports.schedules.recurrence import (
    Frequency,
    Recurrence,
    latest_run_at_or_before,
    local_time,
    next_run,
    next_runs,
    to_utc,
    validate_cron,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local_strings(runs: list[datetime], tz: str) -> list[str]:
    return [local_time(r, tz).strftime("%Y-%m-%d %H:%M %z") for r in runs]


def daily(tz: str, at: time, **kw: object) -> Recurrence:
    return Recurrence(Frequency.DAILY, tz, at, **kw)  # type: ignore[arg-type]


# -- daily over DST ----------------------------------------------------------------------------


def test_daily_0230_berlin_spring_forward_runs_at_0300() -> None:
    runs = next_runs(daily(BERLIN, time(2, 30)), utc(2026, 3, 27, 12), 4)
    assert local_strings(runs, BERLIN) == [
        "2026-03-28 02:30 +0100",
        "2026-03-29 03:00 +0200",  # 02:30 does not exist: runs when the clocks jump
        "2026-03-30 02:30 +0200",
        "2026-03-31 02:30 +0200",
    ]
    assert runs[1] == utc(2026, 3, 29, 1, 0)


def test_daily_0230_berlin_fall_back_runs_once_at_first_occurrence() -> None:
    runs = next_runs(daily(BERLIN, time(2, 30)), utc(2026, 10, 24, 12), 3)
    assert runs == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)]
    # Asking again from inside the repeated hour (02:15 second occurrence) gives the next day.
    assert next_run(daily(BERLIN, time(2, 30)), utc(2026, 10, 25, 1, 15)) == utc(
        2026, 10, 26, 1, 30
    )


def test_daily_new_york_spring_forward_and_fall_back() -> None:
    rule = daily(NEW_YORK, time(2, 30))
    spring = next_runs(rule, utc(2026, 3, 7, 12), 3)
    assert local_strings(spring, NEW_YORK) == [
        "2026-03-08 03:00 -0400",
        "2026-03-09 02:30 -0400",
        "2026-03-10 02:30 -0400",
    ]
    fall = next_runs(rule, utc(2026, 10, 31, 12), 2)
    assert local_strings(fall, NEW_YORK) == ["2026-11-01 02:30 -0500", "2026-11-02 02:30 -0500"]
    one_thirty = next_runs(daily(NEW_YORK, time(1, 30)), utc(2026, 10, 31, 12), 2)
    # 01:30 happens twice on 2026-11-01; the first (EDT) one runs, only once.
    assert one_thirty == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_daily_keeps_local_time_across_dst() -> None:
    runs = next_runs(daily(BERLIN, time(9, 0)), utc(2026, 3, 28, 0), 2)
    assert runs == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7)]


# -- weekly --------------------------------------------------------------------------------------


def test_weekly_sunday_0230_over_both_berlin_changes() -> None:
    rule = Recurrence(Frequency.WEEKLY, BERLIN, time(2, 30), day_of_week=7)
    assert local_strings(next_runs(rule, utc(2026, 3, 20), 2), BERLIN) == [
        "2026-03-22 02:30 +0100",
        "2026-03-29 03:00 +0200",
    ]
    assert next_runs(rule, utc(2026, 10, 20), 2) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 11, 1, 1, 30),
    ]


def test_weekly_monday_new_york_from_a_monday_after_the_time() -> None:
    rule = Recurrence(Frequency.WEEKLY, NEW_YORK, time(7, 30), day_of_week=1)
    # Monday 2026-03-09 08:00 local: this week's run is past, so the next Monday.
    assert next_run(rule, utc(2026, 3, 9, 12)) == utc(2026, 3, 16, 11, 30)
    # Across the US change: EST -> EDT.
    assert next_runs(rule, utc(2026, 3, 1), 2) == [utc(2026, 3, 2, 12, 30), utc(2026, 3, 9, 11, 30)]


# -- monthly / quarterly: month ends, February, leap years -----------------------------------


def test_monthly_31st_clamps_to_month_end() -> None:
    rule = Recurrence(Frequency.MONTHLY, BERLIN, time(6, 0), day_of_month=31)
    runs = next_runs(rule, utc(2027, 1, 1), 6)
    assert [local_time(r, BERLIN).date() for r in runs] == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
        date(2027, 5, 31),
        date(2027, 6, 30),
    ]
    # 2027-03-31 is after the Berlin spring change: 06:00 CEST.
    assert runs[2] == utc(2027, 3, 31, 4)


def test_monthly_29th_30th_in_february_of_leap_and_common_years() -> None:
    for day in (29, 30, 31):
        rule = Recurrence(Frequency.MONTHLY, NEW_YORK, time(9, 0), day_of_month=day)
        assert local_time(next_run(rule, utc(2028, 2, 1)), NEW_YORK).date() == date(2028, 2, 29)  # type: ignore[arg-type]
        assert local_time(next_run(rule, utc(2027, 2, 1)), NEW_YORK).date() == date(2027, 2, 28)  # type: ignore[arg-type]
    rule = Recurrence(Frequency.MONTHLY, NEW_YORK, time(9, 0), day_of_month=29)
    runs = next_runs(rule, utc(2100, 1, 30, 0), 2)  # 2100 is not a leap year
    assert [local_time(r, NEW_YORK).date() for r in runs] == [date(2100, 2, 28), date(2100, 3, 29)]


def test_monthly_on_a_dst_day_new_york() -> None:
    rule = Recurrence(Frequency.MONTHLY, NEW_YORK, time(2, 15), day_of_month=8)
    assert local_strings([next_run(rule, utc(2026, 3, 1))], NEW_YORK) == ["2026-03-08 03:00 -0400"]  # type: ignore[list-item]


def test_quarterly_runs_in_jan_apr_jul_oct_and_clamps() -> None:
    rule = Recurrence(Frequency.QUARTERLY, BERLIN, time(8, 0), day_of_month=31)
    runs = next_runs(rule, utc(2027, 11, 15), 5)
    assert [local_time(r, BERLIN).date() for r in runs] == [
        date(2028, 1, 31),
        date(2028, 4, 30),
        date(2028, 7, 31),
        date(2028, 10, 31),
        date(2029, 1, 31),
    ]
    # Winter 07:00 UTC, summer 06:00 UTC.
    assert runs[0] == utc(2028, 1, 31, 7) and runs[1] == utc(2028, 4, 30, 6)


def test_quarterly_first_of_quarter_from_inside_a_quarter() -> None:
    rule = Recurrence(Frequency.QUARTERLY, "UTC", time(0, 0), day_of_month=1)
    assert next_run(rule, utc(2026, 1, 1, 0, 0)) == utc(2026, 4, 1)
    assert next_run(rule, utc(2025, 12, 31, 23, 59)) == utc(2026, 1, 1)


# -- cron -----------------------------------------------------------------------------------------


def test_cron_evaluated_in_local_time_with_the_same_dst_rules() -> None:
    rule = Recurrence(Frequency.CRON, BERLIN, cron_expression="30 2 * * *")
    assert next_runs(rule, utc(2026, 3, 28, 12), 2) == [
        utc(2026, 3, 29, 1),
        utc(2026, 3, 30, 0, 30),
    ]
    assert next_runs(rule, utc(2026, 10, 24, 12), 2) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]


def test_cron_several_gap_times_fire_once_at_the_jump() -> None:
    rule = Recurrence(Frequency.CRON, NEW_YORK, cron_expression="0,30 2 * * *")
    runs = next_runs(rule, utc(2026, 3, 8, 5), 3)
    # 02:00 and 02:30 do not exist on 2026-03-08; both map to 03:00 EDT, which runs once.
    assert local_strings(runs, NEW_YORK) == [
        "2026-03-08 03:00 -0400",
        "2026-03-09 02:00 -0400",
        "2026-03-09 02:30 -0400",
    ]


def test_cron_weekdays_new_york() -> None:
    rule = Recurrence(Frequency.CRON, NEW_YORK, cron_expression="0 7 * * 1-5")
    runs = next_runs(rule, utc(2026, 10, 30, 12), 3)  # Friday after 07:00
    assert local_strings(runs, NEW_YORK) == [
        "2026-11-02 07:00 -0500",
        "2026-11-03 07:00 -0500",
        "2026-11-04 07:00 -0500",
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * * *", "more often"),
        ("*/5 * * * *", "more often"),
        ("0 0 30 2 *", "never fires"),
        ("0 9 * *", "five fields"),
        ("0 9 * * * 2030", "five fields"),
        ("@reboot", "unsupported"),
        ("61 9 * * *", "not a valid"),
    ],
)
def test_invalid_cron_expressions_are_refused(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_cron(expression)


def test_cron_macros_and_spacing_are_normalised() -> None:
    assert validate_cron("  0   7 * * 1-5 ") == "0 7 * * 1-5"
    assert validate_cron("@Daily") == "@daily"


# -- start / end dates and helpers ---------------------------------------------------------------


def test_start_and_end_dates_are_local_days() -> None:
    rule = daily(BERLIN, time(23, 30), start_date=date(2027, 3, 26), end_date=date(2027, 3, 28))
    runs = next_runs(rule, utc(2027, 1, 1), 5)
    assert local_strings(runs, BERLIN) == [
        "2027-03-26 23:30 +0100",
        "2027-03-27 23:30 +0100",
        "2027-03-28 23:30 +0200",
    ]
    assert next_run(rule, runs[-1]) is None


def test_to_utc_gap_and_overlap() -> None:
    tz = ZoneInfo(BERLIN)
    assert to_utc(datetime(2026, 3, 29, 2, 0), tz) == utc(2026, 3, 29, 1, 0)
    assert to_utc(datetime(2026, 3, 29, 2, 59), tz) == utc(2026, 3, 29, 1, 0)
    assert to_utc(datetime(2026, 10, 25, 2, 0), tz) == utc(2026, 10, 25, 0, 0)
    # Lord Howe moves by 30 minutes.
    assert to_utc(datetime(2026, 10, 4, 2, 15), ZoneInfo("Australia/Lord_Howe")) == utc(
        2026, 10, 3, 15, 30
    )


def test_latest_run_at_or_before() -> None:
    rule = daily("UTC", time(9, 0))
    assert latest_run_at_or_before(rule, utc(2026, 5, 1, 8), not_before=utc(2026, 1, 1)) == utc(
        2026, 4, 30, 9
    )
    assert latest_run_at_or_before(rule, utc(2026, 5, 1, 8), not_before=utc(2026, 4, 30, 9)) is None
    cron = Recurrence(Frequency.CRON, "UTC", cron_expression="*/15 * * * *")
    assert latest_run_at_or_before(cron, utc(2026, 5, 1, 8, 7), not_before=utc(2025, 5, 1)) == utc(
        2026, 5, 1, 8, 0
    )
