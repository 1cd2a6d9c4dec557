"""A scheduled run's alert, decided in its completing commit.

Inside the commit's transaction (after the job's fenced update, `planning.commit_with_deliveries`)
the gate reads the schedule's alert and the state of the run's scope, evaluates the run's
summary figures, writes the scope's new state, the run's evaluation and (when it fired) an audit
record, and returns the deliveries that go out: all of them when the alert fired, the same ones
marked "back to normal" when it recovered and the schedule asks for it, none otherwise. All of it
commits with the job or not at all: a worker that dies before the commit leaves the state as
it was, the job is run again and decides again, so a transition is sent at most once (and
its deliveries keep the ids they were inserted with).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from app.audit import AuditAction
from app.audit.service import build_event
from app.common.time import utcnow
from app.i18n import use_locale
from app.observability import ALERT_EVALUATIONS
from app.reports.deliveries.models import DeliveryAlert, ReportDelivery
from app.reports.jobs.evaluation import AlertOutcome, AlertState, RunEvaluation
from app.reports.jobs.models import ReportJob
from app.reports.rendering.base import Figure
from app.reports.schedules.alerts.models import AlertConfig, ScopeAlertState
from app.reports.schedules.alerts.rules import describe, evaluate, sends
from app.reports.schedules.alerts.schemas import ConditionResultOut
from app.reports.schedules.models import ReportSchedule
from app.reports.types import get_report_type
from app.reports.types.alertable import Metric, alertable_metrics

FiguresByLocale = Mapping[str, Sequence[Figure]] | Sequence[Figure]


def scope_key(scope: Mapping[str, Any] | None) -> str:
    """The key of a run's scope in the schedule's `alert_states`: the owner's one scope, or
    one per recipient scope (audience `recipient`)."""
    text = json.dumps(scope or {}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def metric_values(figures: Sequence[Figure]) -> dict[str, float | None]:
    """The numeric figures of a summary by key (an empty one as None)."""
    out: dict[str, float | None] = {}
    for figure in figures:
        value = figure.value
        if isinstance(value, bool) or not isinstance(value, int | float | type(None)):
            continue
        out[figure.key] = None if value is None else float(value)
    return out


def metrics_of(report_type: str, locale: str) -> dict[str, Metric]:
    with use_locale(locale):
        return {m.key: m for m in alertable_metrics(get_report_type(report_type))}


def _first(figures: FiguresByLocale, locale: str) -> Sequence[Figure]:
    if isinstance(figures, Mapping):
        return figures.get(locale) or next(iter(figures.values()), [])
    return figures


def marked(
    deliveries: Sequence[ReportDelivery], outcome: AlertOutcome, report_type: str
) -> list[ReportDelivery]:
    """The deliveries as an alert sends them: fired or "back to normal", with the conditions
    said in each message's locale (its metric labels too)."""
    state = "recovered" if outcome.state == AlertState.RECOVERED else "fired"
    conditions = [
        ConditionResultOut(**c.model_dump()).model_dump(mode="json", by_alias=True)
        for c in outcome.conditions
    ]
    said: dict[str, DeliveryAlert] = {}
    out = []
    for delivery in deliveries:
        locale = delivery.content.locale
        if locale not in said:
            labels = metrics_of(report_type, locale)
            lines = [
                describe(c, locale, labels[c.metric].label if c.metric in labels else None)
                for c in outcome.conditions
            ]
            said[locale] = DeliveryAlert(state=state, lines=lines, conditions=conditions)
        content = delivery.content.model_copy(update={"alert": said[locale]})
        out.append(delivery.model_copy(update={"content": content}))
    return out


class AlertGate:
    """One run's alert decision (`choose`, handed to the commit), counted once committed.
    `period`: the figures of the period before the run's range, read before the commit when a
    condition compares with it (`periods.for_run`)."""

    def __init__(
        self,
        job: ReportJob,
        figures: FiguresByLocale,
        period: Mapping[str, float | None] | None = None,
    ) -> None:
        self.job = job
        self.figures = figures
        self.period = period
        self.outcome: AlertOutcome | None = None

    async def choose(
        self, deliveries: Sequence[ReportDelivery], session: Any
    ) -> Sequence[ReportDelivery]:
        job = self.job
        self.outcome = None
        if job.test_run:  # a test send is no run: it neither reads nor moves the alert
            return deliveries
        schedules = ReportSchedule.get_pymongo_collection()
        raw = await schedules.find_one(
            {"_id": job.schedule_id}, {"alert": 1, "alert_states": 1}, session=session
        )
        if raw is None or not raw.get("alert"):
            return deliveries
        config = AlertConfig.model_validate(raw["alert"])
        if not config.conditions:
            return deliveries
        key = scope_key(job.scope)
        before = ScopeAlertState.model_validate((raw.get("alert_states") or {}).get(key) or {})
        values = metric_values(_first(self.figures, job.locale))
        metrics = metrics_of(job.report_type, job.locale)
        outcome = evaluate(config, values, before, metrics, self.period)
        outcome.scope_key = key
        outcome.notified = sends(config, outcome) and bool(deliveries)
        now = utcnow()
        state = ScopeAlertState(
            firing=outcome.state in (AlertState.FIRED, AlertState.STILL_FIRING),
            state=outcome.state,
            values=values,
            job_id=job.id,
            evaluated_at=now,
        )
        await schedules.update_one(
            {"_id": job.schedule_id},
            {"$set": {f"alert_states.{key}": state.model_dump(), "updated_at": now}},
            session=session,
        )
        evaluation = RunEvaluation(evaluated_at=now, alert=outcome)
        await ReportJob.get_pymongo_collection().update_one(
            {"_id": job.id}, {"$set": {"evaluation": evaluation.model_dump()}}, session=session
        )
        if outcome.state == AlertState.FIRED:
            await _audit(job, outcome, session)
        self.outcome = outcome
        return marked(deliveries, outcome, job.report_type) if outcome.notified else []

    def committed(self) -> None:
        """Counts the committed outcome in /metrics (once: a retried transaction decided
        again, and only the last decision was committed)."""
        if self.outcome is not None:
            ALERT_EVALUATIONS.labels(self.job.report_type, self.outcome.state.value).inc()


async def _audit(job: ReportJob, outcome: AlertOutcome, session: Any) -> None:
    event = build_event(
        AuditAction.SCHEDULE_ALERT_FIRED,
        None,
        object_type="schedule",
        object_id=str(job.schedule_id),
        scope=job.scope,
        details={
            "jobId": str(job.id),
            "reportType": job.report_type,
            "ownerUserId": job.requested_by.user_id,
            "match": outcome.match,
            "conditions": [describe(c) for c in outcome.conditions],
            "values": {c.metric: c.measured for c in outcome.conditions},
            "notified": outcome.notified,
        },
    )
    await event.insert(session=session)
