"""When a schedule runs: pure, DST-correct next-run computation in the schedule's timezone.

Every rule is evaluated on the local wall clock of the schedule's IANA timezone, then turned
into a UTC instant with two rules for the days the clocks change:

* a local time that does not exist (spring forward, e.g. 02:30 in Europe/Berlin on
  2026-03-29) runs at the moment the clocks jump, i.e. the first local time after the gap
  (03:00 local);
* a local time that happens twice (fall back, e.g. 02:30 in Europe/Berlin on 2026-10-25) runs
  once, at its first occurrence.

Monthly and quarterly rules clamp `day_of_month` to the month's last day (31 -> 30 in April,
-> 28 or 29 in February). Quarterly runs in January, April, July and October. Cron
expressions (five fields, or @hourly/@daily/@weekly/@monthly/@yearly) are evaluated on the
same local wall clock with the same two rules, so each local time matching the expression
fires once.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from app.common.time import is_timezone, zone


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    CRON = "cron"


QUARTER_MONTHS = (1, 4, 7, 10)
CRON_MACROS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
# A schedule that fires more often than this would flood the queue with reports.
MIN_CRON_INTERVAL = timedelta(minutes=15)
# Safety net: no rule needs more candidates than this to find its next run.
_MAX_CANDIDATES = 100_000


@dataclass(frozen=True)
class Recurrence:
    """A schedule's timing rule. `day_of_week` is ISO (1 = Monday ... 7 = Sunday)."""

    frequency: Frequency
    timezone: str
    time_of_day: time = time(0, 0)
    day_of_week: int | None = None
    day_of_month: int | None = None
    cron_expression: str | None = None
    start_date: date | None = None
    end_date: date | None = None

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)


def validate_cron(expression: str) -> str:
    """Returns the normalised expression or raises ValueError saying what is wrong."""
    text = " ".join(expression.split())
    if not text:
        raise ValueError("the cron expression is empty")
    if text.startswith("@"):
        if text.lower() not in CRON_MACROS:
            raise ValueError(
                f"unsupported cron macro {text!r}; use one of {', '.join(CRON_MACROS)}"
            )
        text = text.lower()
    elif len(text.split(" ")) != 5:
        raise ValueError(
            "a cron expression has five fields: minute hour day-of-month month day-of-week"
        )
    if not croniter.is_valid(text):
        raise ValueError(f"{text!r} is not a valid cron expression")
    # Reject expressions that fire too often, or never (e.g. 30 February).
    start = datetime(2025, 1, 1)
    it = croniter(text, start)
    try:
        previous = it.get_next(datetime)
        for _ in range(48):
            current = it.get_next(datetime)
            if current - previous < MIN_CRON_INTERVAL:
                minutes = int(MIN_CRON_INTERVAL.total_seconds() // 60)
                raise ValueError(f"runs more often than every {minutes} minutes")
            previous = current
    except (KeyError, StopIteration, OverflowError, ValueError) as exc:
        if "more often" in str(exc):
            raise
        raise ValueError(f"{text!r} never fires") from exc
    return text


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall-clock time -> the UTC instant it runs at (the DST rules above)."""
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    as_utc = first.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) == local:
        return as_utc  # repeated hour: the first occurrence
    return _gap_end(second.astimezone(UTC), as_utc, tz)


def _gap_end(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The instant the clocks jumped, between `before` (old offset) and `after` (new offset)."""
    new_offset = after.astimezone(tz).utcoffset()
    lo, hi = int(before.timestamp()), int(after.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == new_offset:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _local_candidates(rule: Recurrence, start: datetime) -> Iterator[datetime]:
    """Naive local wall-clock times matching the rule, ascending, from `start` (inclusive)."""
    day = start.date()
    at = rule.time_of_day
    if rule.frequency == Frequency.CRON:
        assert rule.cron_expression
        it = croniter(
            rule.cron_expression, start.replace(second=0, microsecond=0) - timedelta(minutes=1)
        )
        while True:
            yield it.get_next(datetime)
    elif rule.frequency == Frequency.DAILY:
        while True:
            yield datetime.combine(day, at)
            day += timedelta(days=1)
    elif rule.frequency == Frequency.WEEKLY:
        weekday = rule.day_of_week or 1
        day += timedelta(days=(weekday - day.isoweekday()) % 7)
        while True:
            yield datetime.combine(day, at)
            day += timedelta(days=7)
    else:
        months = QUARTER_MONTHS if rule.frequency == Frequency.QUARTERLY else tuple(range(1, 13))
        wanted = rule.day_of_month or 1
        year, month = day.year, day.month
        while True:
            if month in months:
                yield datetime.combine(date(year, month, min(wanted, _last_day(year, month))), at)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def next_run(rule: Recurrence, after: datetime) -> datetime | None:
    """The first run strictly after `after` (aware), in UTC; None once past `end_date`."""
    tz = rule.tz
    after = after.astimezone(UTC)
    start_local = after.astimezone(tz).replace(tzinfo=None)
    if rule.start_date and start_local.date() < rule.start_date:
        start_local = datetime.combine(rule.start_date, time(0, 0))
    for count, local in enumerate(_local_candidates(rule, start_local)):
        if rule.end_date and local.date() > rule.end_date:
            return None
        if rule.start_date and local.date() < rule.start_date:
            continue
        # Local -> UTC is monotonic, so the first candidate past `after` is the answer.
        instant = to_utc(local, tz)
        if instant > after:
            return instant
        if count > _MAX_CANDIDATES:  # pragma: no cover - defensive
            break
    return None


def next_runs(rule: Recurrence, after: datetime, count: int) -> list[datetime]:
    """The next `count` runs strictly after `after` (fewer when the schedule ends)."""
    runs: list[datetime] = []
    cursor = after
    while len(runs) < count:
        nxt = next_run(rule, cursor)
        if nxt is None:
            break
        runs.append(nxt)
        cursor = nxt
    return runs


def latest_run_at_or_before(
    rule: Recurrence, moment: datetime, *, not_before: datetime
) -> datetime | None:
    """The last run in (`not_before`, `moment`], or None. Searches widening windows backwards
    so a long downtime on a frequent cron rule stays cheap."""
    moment = moment.astimezone(UTC)
    for window in (
        timedelta(hours=1),
        timedelta(days=1),
        timedelta(days=8),
        timedelta(days=32),
        timedelta(days=93),
        timedelta(days=367),
        None,
    ):
        lower = not_before if window is None else max(not_before, moment - window)
        found: datetime | None = None
        cursor = lower
        while True:
            nxt = next_run(rule, cursor)
            if nxt is None or nxt > moment:
                break
            found, cursor = nxt, nxt
        if found is not None or window is None or lower == not_before:
            return found
    return None  # pragma: no cover - the loop always returns


def local_time(instant: datetime, timezone: str) -> datetime:
    """A UTC instant shown in the schedule's timezone."""
    return instant.astimezone(zone(timezone))


# The timing fields of a schedule request as clients may write them: a day of the week by number
# or name, a time of day as `HH:MM`, an IANA timezone.
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
DAY_NAMES = {
    name: number
    for number, names in enumerate(
        (
            ("monday", "mon"),
            ("tuesday", "tue"),
            ("wednesday", "wed"),
            ("thursday", "thu"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ),
        start=1,
    )
    for name in names
}


def parse_day_of_week(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be 1–7 (1 = Monday) or a day name")
    if isinstance(value, int):
        if 1 <= value <= 7:
            return value
        raise ValueError("must be 1–7 (1 = Monday … 7 = Sunday)")
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return parse_day_of_week(int(text))
        if text in DAY_NAMES:
            return DAY_NAMES[text]
    raise ValueError("must be 1–7 (1 = Monday) or a day name such as `monday`")


def check_time_of_day(value: str | None) -> str | None:
    if value is not None and not TIME_OF_DAY.match(value):
        raise ValueError("must be HH:MM on a 24-hour clock, e.g. 07:30")
    return value


def check_timezone(value: str | None) -> str | None:
    if value is not None and not is_timezone(value):
        raise ValueError(f"{value!r} is not an IANA timezone such as Europe/Berlin")
    return value
