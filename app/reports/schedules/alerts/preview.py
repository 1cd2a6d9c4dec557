"""`POST /schedules/{id}/evaluate`: what a run of the schedule would measure and send now.

The run's request goes the road every run goes (as the owner, re-checked), then the report
type's own read and summarizer run here, without making a file, within the preview budget
(`PREVIEW_BUDGET_MS`; a read that does not fit is refused with its estimate, like a preview,
and counts against the caller's previews a minute). The alert is evaluated against the
scope's stored state exactly as the run's commit would, but nothing is written and nothing
is sent. Evaluated in the owner's scope (with audience `recipient` or `department-managers`,
the owner's scope stands for the recipients' ones). A condition comparing with the previous
period has that period read too, within the same budget. The recipients are the ones a run now
would send to, as `GET /schedules/{id}/audience` finds them (the managers of the subtree for
audience `department-managers`).
"""

from __future__ import annotations

from app.common.time import utcnow
from app.i18n import use_locale
from app.reports.jobs.evaluation import AlertState, ChangeOutcome
from app.reports.jobs.requests import resolve_locale, resolve_request
from app.reports.previews.budget import Budget, ReadWatch, ran_out, too_large
from app.reports.previews.service import check_rate
from app.reports.reading.progress import READ_PROGRESS
from app.reports.schedules import runner
from app.reports.schedules.alerts.gate import metric_values, metrics_of, scope_key
from app.reports.schedules.alerts.models import ScopeAlertState
from app.reports.schedules.alerts.periods import period_values, wants_previous_period
from app.reports.schedules.alerts.rules import evaluate, sends
from app.reports.schedules.alerts.schemas import (
    AlertOutcomeOut,
    EvaluationOut,
    MetricOut,
    WouldSendOut,
)
from app.reports.schedules.changes.runs import DryComparison
from app.reports.schedules.changes.schemas import ChangeOutcomeOut
from app.reports.schedules.models import ReportSchedule
from app.reports.schedules.trial import audience_recipients
from app.runtime.resources import Resources
from app.security import Principal

READ_BATCH = 2000


async def evaluate_now(
    resources: Resources, principal: Principal, schedule: ReportSchedule
) -> EvaluationOut:
    settings = resources.settings
    await check_rate(resources, principal)
    as_owner = await runner.runner_for(schedule, principal)
    request = await runner.schedule_request(schedule, as_owner)
    now = utcnow()
    resolution = await resolve_request(settings, as_owner, request, now)
    definition, resolved = resolution.definition, resolution.resolved
    params, scope = resolved.parameters, resolved.scope
    locale = await resolve_locale(request.locale, as_owner)
    summarizer = definition.summarizer(params)
    budget = Budget(settings.preview_budget_ms)
    watch = ReadWatch(budget)
    following = READ_PROGRESS.set(watch)
    rows = 0
    period = None
    # Change reports: compared with the scope's baseline as the run would, nothing stored.
    dry = DryComparison(
        schedule, scope.to_document(), [c.key for c in definition.columns_for(params)]
    )
    try:
        async with budget.spending():
            async for batch in definition.fetch(params, scope, READ_BATCH):
                summarizer.add(batch)
                dry.add(batch)
                rows += len(batch)
            if wants_previous_period(schedule.alert):  # the period before the run's range
                period = await period_values(definition, params, scope, READ_BATCH)
        changes = await dry.outcome(resources.storage)
    except Exception as exc:
        if ran_out(exc):
            raise await too_large(
                definition, params, scope, request.parameters, watch, budget
            ) from exc
        raise
    finally:
        READ_PROGRESS.reset(following)
        dry.close()
    with use_locale(locale):
        figures = summarizer.figures()
    values = metric_values(figures)
    metrics = metrics_of(schedule.report_type, locale)
    measured = [
        MetricOut(key=m.key, label=m.label, value=values.get(m.key), unit=m.unit)
        for m in metrics.values()
        if m.key in values
    ]
    config = schedule.delivery_config()
    listed, _, _ = await audience_recipients(settings, schedule)
    recipients = [r.address for r in listed if r.address]
    hooks = len(config.webhook_endpoint_ids)
    if schedule.alert is None or not schedule.alert.conditions:
        kind = unchanged_kind(schedule, changes, "report" if recipients or hooks else "none")
        return EvaluationOut(
            evaluated_at=now,
            row_count=rows,
            metrics=measured,
            changes=ChangeOutcomeOut.of(changes),
            would_send=_would(kind, schedule, recipients, hooks),
        )
    before = schedule.alert_states.get(scope_key(scope.to_document())) or ScopeAlertState()
    outcome = evaluate(schedule.alert, values, before, metrics, period)
    outcome.notified = sends(schedule.alert, outcome) and bool(recipients or hooks)
    kind = "none"
    if outcome.notified:
        kind = "recovery" if outcome.state == AlertState.RECOVERED else "alert"
    return EvaluationOut(
        evaluated_at=now,
        row_count=rows,
        metrics=measured,
        alert=AlertOutcomeOut.of(outcome),
        changes=ChangeOutcomeOut.of(changes),
        would_send=_would(kind, schedule, recipients, hooks),
    )


def _would(kind: str, schedule: ReportSchedule, recipients: list[str], hooks: int) -> WouldSendOut:
    if kind == "none":
        return WouldSendOut(kind=kind)
    subject = {
        "report": "Report: {report}",
        "alert": "Alert: {report}",
        "recovery": "Back to normal: {report}",
        "changes": "Changes: {report}",
        "unchanged": "{report}: no changes",
    }[kind].format(report=schedule.name)
    return WouldSendOut(kind=kind, subject=subject, recipients=recipients, webhooks=hooks)


def unchanged_kind(schedule: ReportSchedule, changes: ChangeOutcome | None, kind: str) -> str:
    """What a change report would send: `changes`, an `unchanged` notice, or nothing."""
    if changes is None or kind == "none" or schedule.changes is None:
        return kind
    if not changes.nothing_changed:
        return "changes"
    policy = schedule.changes.unchanged
    return {"skip": "none", "notice": "unchanged"}.get(policy.value, "changes")
