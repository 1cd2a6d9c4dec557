"""Where report reads go: the read preference of `REPORT_READ_PREFERENCE` (with
`REPORT_MAX_STALENESS_SECONDS`), applied to the collections a report reads and to nothing else.
Jobs, schedules, the outbox and every write keep the client's default, the primary.

The entry points (`app/main.py`, `worker/main.py`) hand the settings over once with
`use_report_reads`, as they hand the lookup catalogue its sources; until then, and in a process
that never calls it, reports read from the primary. A secondary can be behind the primary (at
most the staleness bound when one is set): a report may then miss the last seconds of writes,
which its "generated at" already allows for; nothing a report reads decides a write.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.read_preferences import (
    Primary,
    _ServerMode,
    make_read_preference,
    read_pref_mode_from_name,
)

from app.config import Settings

_PRIMARY = Primary()


class _ReportReads:
    mode: _ServerMode = _PRIMARY


_READS = _ReportReads()


def read_preference_of(settings: Settings) -> _ServerMode:
    """The PyMongo read preference the settings name for report reads."""
    mode = read_pref_mode_from_name(str(settings.report_read_preference))
    return make_read_preference(mode, None, settings.report_max_staleness_seconds)


def use_report_reads(settings: Settings) -> None:
    """Report reads from now on go where the settings say (called by the entry points)."""
    _READS.mode = read_preference_of(settings)


def report_read_preference() -> _ServerMode:
    return _READS.mode


def report_reads(collection: AsyncCollection[Any]) -> AsyncCollection[Any]:
    """`collection` as a report reads it (the same collection on the primary by default)."""
    if _READS.mode == collection.read_preference:
        return collection
    return collection.with_options(read_preference=_READS.mode)


def report_database(database: AsyncDatabase[Any]) -> AsyncDatabase[Any]:
    """`database` as a report reads it: the dimension collections of a report's joins."""
    if _READS.mode == database.read_preference:
        return database
    return database.with_options(read_preference=_READS.mode)
