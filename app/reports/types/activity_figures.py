"""learning-activity's figures added up in the worker from events read in time order, with
the semantics of the aggregation they replace (`LearningActivity._grouped`): each event counts
in its (period, type), a learner once per (period, type); a period is the local day, ISO week
(from Monday) or month of the event in the report's timezone (`$dateTrunc`).

Events arrive in time order (one index read, sorted), so periods arrive in order too: once an
event of a later period comes, the earlier periods are complete and become rows, and their
learners are let go. Memory is one period's distinct learners, whatever the range.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from app.reports.reading.query import Dimensions, Row

Period = Callable[[datetime], date]


def period_of(unit: str, tz: tzinfo) -> Period:
    """The local date the period of a (naive UTC) instant starts on."""

    def day(at: datetime) -> date:
        return at.replace(tzinfo=UTC).astimezone(tz).date()

    if unit == "week":
        return lambda at: (d := day(at)) - timedelta(days=d.weekday())
    if unit == "month":
        return lambda at: day(at).replace(day=1)
    return day


class ActivityFigures:
    """The `Grouper` of learning-activity (rows: period start, type, events, learners)."""

    def __init__(self, period: Period) -> None:
        self.period = period
        self.current: date | None = None
        self.open: dict[Any, list[Any]] = {}  # the current period's types: [events, learners]
        self.done: list[Row] = []
        self.last: datetime | None = None

    def add(self, docs: list[dict[str, Any]], dims: Dimensions) -> None:
        period, groups = self.period, self.open
        for doc in docs:
            at = doc["occurred_at"]
            if self.last is not None and at < self.last:
                raise RuntimeError("learning events must arrive in time order")
            self.last = at
            start = period(at)
            if start != self.current:
                self._close()
                self.current, groups = start, self.open
            kind = doc.get("type")
            group = groups.get(kind)
            if group is None:
                group = groups[kind] = [0, set()]
            group[0] += 1
            group[1].add(doc.get("user_id"))

    def _close(self) -> None:
        for kind in sorted(self.open, key=_type_order):
            events, learners = self.open[kind]
            self.done.append((self.current, kind, events, len(learners)))
        self.open = {}

    def rows(self) -> list[Row]:
        self._close()
        return self.done


def _type_order(kind: Any) -> tuple[bool, str]:
    return (kind is not None, str(kind or ""))
