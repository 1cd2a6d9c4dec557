"""learning-activity: one row per (period, event type) with at least one event in range.

Periods are local days, ISO weeks (starting Monday) or months in the report's timezone, cut by
`$dateTrunc` with that timezone on the server; `periodStart` is the local date the period
starts on. PDF and Excel show a first period that begins before the range from the range's
first day (`people_cells`); CSV keeps the period's own start. The most frequent event type is
named by its label; on a tie every tied type is, ordered by label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.common.time import zone
from app.i18n import N_, _, current_formats, current_locale
from app.learning_events.models import LearningEvent
from app.lookups import validation
from app.lookups.codes import EventTypeCode
from app.reports.dates import DateRange
from app.reports.reading.query import (
    Plan,
    Row,
    Stage,
    grouped,
    range_match,
    scope_match,
    split_match,
)
from app.reports.rendering.totals import SUM, Total
from app.reports.types import chart_definitions
from app.reports.types.activity_figures import ActivityFigures, Period, period_of
from app.reports.types.base import Column, Figure, ReportDefinition, column, column_index, measure
from app.reports.types.figures import utc
from app.reports.types.parameters import (
    COURSES_DESCRIPTION,
    DATE_RANGE_DESCRIPTION,
    DEPARTMENTS_DESCRIPTION,
    SUB_DEPARTMENTS_DESCRIPTION,
    FilteredRangeResolved,
    IdList,
    ReportParameters,
    default_date_range,
)
from app.security import DataScope

EVENT_TYPE = "learning-event-type"
EVENTS = column(
    "events",
    N_("Events"),
    "integer",
    N_(
        "Learning events of the row's type in its period (within the range); the summary adds up "
        "every row"
    ),
)


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class LearningActivityParameters(ReportParameters):
    date_range: DateRange = Field(
        default_factory=default_date_range, description=DATE_RANGE_DESCRIPTION
    )
    granularity: Granularity = Field(
        default=Granularity.DAY,
        description="Period length: local day, ISO week (Monday first) or calendar month",
    )
    event_types: list[EventTypeCode] | None = Field(
        default=None,
        min_length=1,
        description="Only these learning-event-type codes. Omitted: all",
    )
    department_ids: IdList | None = Field(default=None, description=DEPARTMENTS_DESCRIPTION)
    include_sub_departments: bool = Field(default=True, description=SUB_DEPARTMENTS_DESCRIPTION)
    course_ids: IdList | None = Field(default=None, description=COURSES_DESCRIPTION)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dateRange": {"preset": "last-quarter"},
                    "granularity": "week",
                    "eventTypes": ["lesson-completed", "quiz-submitted"],
                    "timezone": "Asia/Tokyo",
                }
            ]
        }
    )


class LearningActivityResolved(FilteredRangeResolved):
    granularity: Granularity = Granularity.DAY
    event_types: list[str] | None = None


class LearningActivity(ReportDefinition[LearningActivityParameters, LearningActivityResolved]):
    key = "learning-activity"
    name = N_("Learning activity")
    description = N_(
        "Learning events per period (day, week or month in the report's timezone) and event "
        "type, with the number of distinct learners."
    )
    parameters_model = LearningActivityParameters
    resolved_model = LearningActivityResolved
    source = LearningEvent
    columns: ClassVar[list[Column]] = [
        column(
            "periodStart",
            N_("Period start"),
            "date",
            N_(
                "The first local day of the period (the day, the ISO week's Monday or the month's "
                "first day, in the report's timezone); a period that begins before the range is "
                "shown from the range's first day in PDF and Excel"
            ),
            explained=True,
        ),
        column(
            "eventType",
            N_("Event type"),
            "string",
            N_(
                "What the learners did (the kind of learning event: Course enrolled, Lesson started, "
                "Lesson completed, Quiz submitted, …)"
            ),
            lookup=EVENT_TYPE,
        ),
        EVENTS,
        column(
            "uniqueLearners",
            N_("Unique learners"),
            "integer",
            N_("Distinct learners with at least one event of that type in the period"),
        ),
    ]
    totals: ClassVar[Mapping[str, Total]] = {"events": SUM}
    default_sort: ClassVar[list[str]] = ["periodStart", "eventType"]
    group_columns = ("periodStart", "eventType")
    charts = chart_definitions.LEARNING_ACTIVITY
    option_labels: ClassVar[dict[str, str]] = {
        "granularity": N_("Granularity"),
        "eventTypes": N_("Event types"),
    }
    option_values: ClassVar[dict[str, str | dict[str, str]]] = {
        "granularity": {"day": N_("Day"), "week": N_("Week"), "month": N_("Month")},
        "eventTypes": EVENT_TYPE,
    }

    def resolve_parameters(
        self, params: LearningActivityParameters, now: datetime
    ) -> LearningActivityResolved:
        return LearningActivityResolved(
            **self.resolved_fields(params, now),
            granularity=params.granularity,
            event_types=list(params.event_types) if params.event_types else None,
        )

    def _grouped(self, resolved: LearningActivityResolved, scope: DataScope) -> list[Stage]:
        match: dict[str, Any] = {"occurred_at": range_match(resolved.date_range)}
        if resolved.event_types:
            match["type"] = {"$in": list(resolved.event_types)}
        match.update(
            scope_match(scope, departments=resolved.department_ids, courses=resolved.course_ids)
        )
        granularity = resolved.granularity
        truncate: dict[str, Any] = {
            "date": "$occurred_at",
            "unit": granularity.value,
            "timezone": resolved.timezone,
        }
        if granularity == Granularity.WEEK:
            truncate["startOfWeek"] = "monday"
        return [
            {"$match": match},
            # Two groupings: per learner first, so distinct learners are counted without
            # collecting user ids into one array.
            {
                "$group": {
                    "_id": {
                        "period": {"$dateTrunc": truncate},
                        "type": "$type",
                        "user": "$user_id",
                    },
                    "events": {"$sum": 1},
                }
            },
            {
                "$group": {
                    "_id": {"period": "$_id.period", "type": "$_id.type"},
                    "events": {"$sum": "$events"},
                    "learners": {"$sum": 1},
                }
            },
        ]

    async def count_stages(
        self, resolved: LearningActivityResolved, scope: DataScope
    ) -> list[Stage]:
        return self._grouped(resolved, scope)

    async def plan(self, resolved: LearningActivityResolved, scope: DataScope) -> Plan:
        """One index read of the events in time order, added up in the worker
        (`ActivityFigures`); a report whose filter needs several reads (departments or
        courses of a `$in`) is grouped by the server (`_grouped`), which sees them at once."""
        match = self._grouped(resolved, scope)[0]["$match"]
        reads, keep = split_match(match, _index(match), naive=True)
        if len(reads) <= 1:
            figures = _figures(period_of(resolved.granularity.value, zone(resolved.timezone)))
            return Plan.of_facts(
                grouped(reads, keep, _FACT_FIELDS, (), figures, "occurred_at", _IN_TIME_ORDER)
            )
        tz = zone(resolved.timezone)

        def to_row(doc: dict[str, Any]) -> Row:
            period = utc(doc["_id"]["period"])
            return (
                period.astimezone(tz).date() if period else None,
                doc["_id"].get("type"),
                doc["events"],
                doc["learners"],
            )

        return Plan(
            [*self._grouped(resolved, scope), {"$sort": {"_id.period": 1, "_id.type": 1}}], to_row
        )

    def people_cells(self, resolved: LearningActivityResolved) -> dict[str, Callable[[Any], Any]]:
        """A period that begins before the range (the first ISO week, or month) is shown from
        the range's first day: the file covers no day before it."""
        first_day = resolved.date_range.from_

        def clipped(value: Any) -> Any:
            return first_day if isinstance(value, date) and value < first_day else value

        return {"periodStart": clipped}

    def summary(self, resolved: LearningActivityResolved | None) -> LearningActivitySummary:
        return LearningActivitySummary()


_FACT_FIELDS = dict.fromkeys(("occurred_at", "type", "user_id"), 1)
_IN_TIME_ORDER = {"occurred_at": 1, "_id": 1}


def _figures(period: Period) -> Callable[[], ActivityFigures]:
    return lambda: ActivityFigures(period)


def _index(match: dict[str, Any]) -> tuple[str, ...]:
    """The index of the events' read: a learner's, else one department's or course's when the
    filter names it, else the time range (an event-type filter is tested in the worker)."""
    for name in ("user_id", "department_id", "course_id"):
        if name in match:
            return (name, "occurred_at")
    return ("occurred_at",)


class LearningActivitySummary:
    """Events, periods with activity, event types seen, the most frequent event type(s)."""

    PERIODS = measure(
        "periods",
        N_("Periods with activity"),
        "integer",
        N_("Periods (days, weeks or months) with at least one event"),
    )
    TYPES = measure(
        "eventTypes", N_("Event types"), "integer", N_("Event types with at least one event")
    )
    MOST_FREQUENT = measure(
        "mostFrequentEventType",
        N_("Most frequent event type"),
        "string",
        N_(
            "The event type with the most events in the report, and that number of events; on a "
            "tie every tied type is named, ordered by label"
        ),
    )

    def __init__(self) -> None:
        self.events = 0
        self.periods: set[Any] = set()
        self.by_type: dict[str, int] = {}

    def add(self, batch: Sequence[Row]) -> None:
        at_period, at_type, at_events = _SUMMARY_COLUMNS
        for row in batch:
            period, event_type, events = row[at_period], row[at_type], row[at_events]
            self.events += events
            self.periods.add(period)
            self.by_type[event_type] = self.by_type.get(event_type, 0) + events

    def most_frequent(self) -> str | None:
        """The busiest type's label and its events ("Lesson started (149)"); every tied type,
        ordered by label ("Lesson started, Quiz submitted (149 each)"); None without events."""
        if not self.by_type:
            return None
        most = max(self.by_type.values())
        labels = validation.labels(EVENT_TYPE, current_locale())
        tied = sorted(
            (labels.get(t, t) if isinstance(t, str) else str(t))
            for t, n in self.by_type.items()
            if n == most
        )
        tied.sort(key=str.casefold)
        count = current_formats().integer(most)
        if len(tied) > 1:
            return _("{types} ({count} each)").format(types=", ".join(tied), count=count)
        return f"{tied[0]} ({count})"

    def figures(self) -> list[Figure]:
        return [
            EVENTS.figure(self.events),
            self.PERIODS.figure(len(self.periods)),
            self.TYPES.figure(len(self.by_type)),
            self.MOST_FREQUENT.figure(self.most_frequent()),
        ]


LEARNING_ACTIVITY = LearningActivity()
_SUMMARY_COLUMNS = column_index(LEARNING_ACTIVITY.columns, "periodStart", "eventType", "events")
