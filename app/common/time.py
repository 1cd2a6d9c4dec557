"""Time helpers: everything stored is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes read back from MongoDB are UTC; make them aware."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# Every date and datetime a request may name lies in this window: beyond it, local midnights,
# UTC conversions and the runs of a schedule would overflow what datetimes (and MongoDB) hold.
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(2100, 12, 31)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_END = datetime(2100, 12, 31, tzinfo=UTC) + timedelta(days=1)
WINDOW = f"must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}"


def _utc_in_window(value: datetime) -> datetime:
    try:
        moment = as_utc(value)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 lies past year 9999 in UTC
        raise ValueError(WINDOW) from None
    if not _EARLIEST <= moment < _END:
        raise ValueError(WINDOW)
    return moment


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2026-01-31T00:00:00Z")
    return value


BoundedDateTime = Annotated[datetime, AfterValidator(_utc_in_window)]
"""A datetime inside the supported window, as aware UTC (one without an offset is UTC)."""
AwareBoundedDateTime = Annotated[datetime, AfterValidator(_aware), AfterValidator(_utc_in_window)]
"""The same, but a datetime without a UTC offset is refused (it would be ambiguous)."""

MAX_TIMEZONE_LENGTH = 64  # the longest IANA name is 32 characters


def zone(name: str) -> ZoneInfo:
    if len(name) > MAX_TIMEZONE_LENGTH:
        raise ValueError(f"a timezone name has at most {MAX_TIMEZONE_LENGTH} characters")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long
        raise ValueError(f"unknown IANA timezone {name!r}") from exc


def is_timezone(name: str) -> bool:
    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        return False
    if len(name) > MAX_TIMEZONE_LENGTH:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return name in _known_zones() or name == "UTC"


_ZONES: set[str] | None = None


def _known_zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = set(available_timezones())
    return _ZONES
