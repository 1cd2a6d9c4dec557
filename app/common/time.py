"""Time helpers: everything stored is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes read back from MongoDB are UTC; make them aware."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


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
