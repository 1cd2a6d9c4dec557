"""Where the rest of the application meets the outbox: the executor's final commit plans the
job's deliveries and inserts them in the same transaction (`commit_completed`,
`commit_failed`); a schedule that pauses itself tells its owner (`insert_pause_notice`); every
sender loop of this process is woken after a commit that planned something (`wake_senders`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import structlog
from beanie import PydanticObjectId

from app.config import Settings
from app.i18n import DEFAULT_LOCALE, translate
from app.platform.repository import user_by_id
from app.reports.deliveries import repository
from app.reports.deliveries.described import parameters_by_locale
from app.reports.deliveries.models import Recipient, ReportDelivery, WebhookEndpoint
from app.reports.deliveries.planning import (
    ChooseDeliveries,
    FencedUpdate,
    FiguresByLocale,
    commit_with_deliveries,
    plan_deliveries,
    plan_notice,
)
from app.reports.deliveries.recipients import user_locale
from app.reports.jobs.models import JobResult, JobStatus, ReportJob, Requester
from app.reports.types import get_report_type

log = structlog.get_logger(__name__)

# The sender loops running in this process (the worker's), woken after a commit that planned
# deliveries so they go out at once rather than at the next poll.
_WAKERS: set[asyncio.Event] = set()


def register_waker(event: asyncio.Event) -> None:
    _WAKERS.add(event)


def unregister_waker(event: asyncio.Event) -> None:
    _WAKERS.discard(event)


def wake_senders() -> None:
    for event in list(_WAKERS):
        event.set()


def _report_name(job: ReportJob, locale: str | None = None) -> str:
    """The schedule's title, else the report type's name (in `locale`, default the job's)."""
    if job.delivery is not None and job.delivery.title:
        return job.delivery.title
    try:
        return translate(locale or job.locale, get_report_type(job.report_type).name)
    except Exception:  # a type removed since: its key still names it
        return job.report_type


# Whether a schedule's runs may still deliver, read in the given session (its commit's
# transaction): not once it is paused or deleted. The schedules package answers it; the worker
# hands it to the executor (`app.reports.tasks`).
ScheduleDelivers = Callable[[PydanticObjectId, Any], Awaitable[bool]]


async def _commit(
    job: ReportJob,
    fenced_update: FencedUpdate,
    deliveries: Sequence[ReportDelivery],
    delivers: ScheduleDelivers,
    choose: ChooseDeliveries | None = None,
) -> bool:
    client = ReportJob.get_pymongo_collection().database.client
    schedule_id = job.schedule_id

    async def schedule_delivers(session: Any) -> bool:
        assert schedule_id is not None
        if await delivers(schedule_id, session):
            return True
        log.info("deliveries_dropped_schedule_stopped", schedule_id=str(schedule_id))
        return False

    chosen: list[ReportDelivery] = list(deliveries)

    async def choosing(planned: Sequence[ReportDelivery], session: Any) -> Sequence[ReportDelivery]:
        assert choose is not None
        chosen[:] = await choose(planned, session)  # a retried transaction decides again
        return chosen

    ok = await commit_with_deliveries(
        client,
        fenced_update,
        deliveries,
        schedule_delivers if schedule_id else None,
        choosing if choose is not None else None,
    )
    if ok and chosen:
        log.info("deliveries_planned", count=len(chosen))
        wake_senders()
    return ok


async def plan_completed(
    job: ReportJob,
    result: JobResult,
    expires_at: datetime,
    settings: Settings,
    *,
    figures: FiguresByLocale = (),
) -> list[ReportDelivery]:
    """The deliveries of a job completing with `result` (none without a delivery config);
    `figures`: the summary in each locale its messages are written in."""
    config = job.delivery
    if config is None or not (config.recipients or config.webhook_endpoint_ids):
        return []
    endpoints: list[WebhookEndpoint] = []
    if config.webhook_endpoint_ids:
        endpoints = await WebhookEndpoint.find(
            {"_id": {"$in": list(config.webhook_endpoint_ids)}}
        ).to_list()
    done = job.model_copy(
        update={"status": JobStatus.COMPLETED, "result": result, "expires_at": expires_at}
    )
    return plan_deliveries(
        done,
        config,
        endpoints,
        settings,
        report_name=lambda locale: _report_name(job, locale),
        figures=figures,
        parameters=await parameters_by_locale(done),
    )


async def commit_completed(
    job: ReportJob,
    result: JobResult,
    expires_at: datetime,
    settings: Settings,
    fenced_update: FencedUpdate,
    *,
    delivers: ScheduleDelivers,
    figures: FiguresByLocale = (),
    choose: ChooseDeliveries | None = None,
) -> bool:
    """The executor's completing commit: `fenced_update(session)` with the job's deliveries,
    in one transaction (or the bare update when there are none); a run of a schedule paused
    or deleted by then (`delivers`) completes without them; `choose` (a schedule's alert)
    decides in the same transaction which of them go out."""
    deliveries = await plan_completed(job, result, expires_at, settings, figures=figures)
    return await _commit(job, fenced_update, deliveries, delivers, choose)


async def _owner(requester: Requester) -> Recipient | None:
    return await _user_recipient(requester.user_id, requester.email)


async def _user_recipient(user_id: str, fallback: str | None = None) -> Recipient | None:
    """A user's address as the platform holds it now (a token's may be stale)."""
    user = await user_by_id(user_id)
    address = user.email if user is not None else fallback
    if not address:
        return None
    return Recipient(user_id=user_id, address=address, locale=user_locale(user))


async def plan_failed(job: ReportJob, settings: Settings, reason: str) -> list[ReportDelivery]:
    """A scheduled run that failed for good: a notice to the schedule's owner."""
    if job.delivery is None or not job.delivery.notify_owner_on_failure:
        return []
    owner = await _owner(job.requested_by)
    if owner is None:
        return []
    locale = owner.locale or job.locale
    name = _report_name(job, locale)
    text = translate(
        locale,
        "The scheduled report {report!r} failed and will not be retried: {reason}\n\n"
        "The schedule keeps running at its next time. To run it again now, use the schedule's "
        "run-now (POST /api/v1/reports/schedules/{{id}}/run-now) or retry the job "
        "(POST /api/v1/reports/jobs/{job}/retry).",
    ).format(report=name, reason=reason, job=job.id)
    return [
        plan_notice(
            settings,
            recipient=owner,
            subject=translate(locale, "{report}: the scheduled run failed").format(report=name),
            text=text,
            locale=locale,
            report_name=name,
            report_type=job.report_type,
            job=job.model_copy(update={"status": JobStatus.FAILED}),
        )
    ]


async def commit_failed(
    job: ReportJob,
    settings: Settings,
    reason: str,
    fenced_update: FencedUpdate,
    *,
    delivers: ScheduleDelivers,
) -> bool:
    """The executor's failing-for-good commit, with the owner's failure notice (none for a
    schedule paused or deleted by then)."""
    return await _commit(job, fenced_update, await plan_failed(job, settings, reason), delivers)


async def insert_pause_notice(
    settings: Settings,
    *,
    owner: Requester,
    schedule_id: PydanticObjectId,
    schedule_name: str,
    report_type: str,
    reason: str,
    schedule_locale: str | None = None,
) -> ReportDelivery | None:
    """A schedule paused itself (failures, owner lost rights): its owner is told why and how
    to resume. Written after the pause (a lost notice is a lost e-mail, not a lost state)."""
    recipient = await _owner(owner)
    if recipient is None:
        return None
    locale = recipient.locale or schedule_locale or DEFAULT_LOCALE
    notice = plan_notice(
        settings,
        recipient=recipient,
        subject=translate(locale, "{schedule}: the schedule paused itself").format(
            schedule=schedule_name
        ),
        text=translate(
            locale,
            "The schedule {schedule!r} paused itself. {reason}\n\n"
            "Fix the cause, then resume it: POST /api/v1/reports/schedules/"
            "{id}/resume (the next run is computed from then).",
        ).format(schedule=schedule_name, reason=reason, id=schedule_id),
        locale=locale,
        report_name=schedule_name,
        report_type=report_type,
        schedule_id=schedule_id,
    )
    await repository.insert_many([notice])
    wake_senders()
    return notice


async def insert_burst_skipped_notice(
    settings: Settings,
    *,
    owner: Requester,
    schedule_id: PydanticObjectId,
    schedule_name: str,
    report_type: str,
    departments: list[str],
    schedule_locale: str | None = None,
) -> ReportDelivery | None:
    """A schedule bursting to department managers met departments without a manager: its
    owner is told once per change of that list (`departments` empty: all are covered again)."""
    recipient = await _owner(owner)
    if recipient is None:
        return None
    locale = recipient.locale or schedule_locale or DEFAULT_LOCALE
    if departments:
        text = translate(
            locale,
            "The schedule {schedule!r} sends each department's report to its managers. These "
            "departments have no active manager, so nobody receives their own report: "
            "{departments}. Their data is in the report of a manager above them, if any.",
        ).format(schedule=schedule_name, departments=", ".join(departments))
    else:
        text = translate(
            locale, "Every department of the schedule {schedule!r} has a manager again."
        ).format(schedule=schedule_name)
    notice = plan_notice(
        settings,
        recipient=recipient,
        subject=translate(locale, "{schedule}: departments without a manager").format(
            schedule=schedule_name
        ),
        text=text,
        locale=locale,
        report_name=schedule_name,
        report_type=report_type,
        schedule_id=schedule_id,
    )
    await repository.insert_many([notice])
    wake_senders()
    return notice


async def insert_endpoint_gone_notice(
    settings: Settings, endpoint: WebhookEndpoint, delivery: ReportDelivery
) -> None:
    """A webhook answered 410 Gone and was disabled: its owner is told (once, by the sender
    that disabled it)."""
    recipient = await _user_recipient(endpoint.owner_user_id)
    if recipient is None:
        return
    locale = recipient.locale or delivery.content.locale
    notice = plan_notice(
        settings,
        recipient=recipient,
        subject=translate(locale, "A webhook endpoint was disabled"),
        text=translate(
            locale,
            "The webhook endpoint {url} answered 410 Gone, so it was disabled and "
            "receives no more calls. Register the new address (the schedule's `webhooks`, or "
            "POST /api/v1/reports/webhooks) to receive reports again.",
        ).format(url=endpoint.url),
        locale=locale,
        report_name=delivery.content.report_name,
        report_type=delivery.content.report_type,
        schedule_id=delivery.schedule_id,
    )
    await repository.insert_many([notice])


__all__ = [
    "ScheduleDelivers",
    "commit_completed",
    "commit_failed",
    "insert_endpoint_gone_notice",
    "insert_pause_notice",
    "plan_completed",
    "plan_failed",
    "register_waker",
    "unregister_waker",
    "wake_senders",
]
