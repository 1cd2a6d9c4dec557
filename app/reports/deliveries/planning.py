"""Turning a finished job into outbox entries, and committing them with the job.

Nothing is sent from inside a job: the executor plans the deliveries (`plan_deliveries`, pure)
and inserts them in the same transaction as its fenced commit (`commit_with_deliveries`), so a
job is completed with its deliveries or not at all. The sender (`sender.send_due`) does the
rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import AsyncMongoClient

from app.common.time import as_utc, utcnow
from app.config import Settings
from app.i18n import DEFAULT_LOCALE, translate
from app.reports.deliveries import repository
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryConfig,
    DeliveryContent,
    DeliveryKind,
    DeliveryMode,
    EmptyResultPolicy,
    Figure,
    Parameter,
    Recipient,
    ReportDelivery,
    WebhookEndpoint,
)
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.rendering.base import Figure as SummaryFigure

Figures = Sequence[SummaryFigure]
# The summary figures by locale (`{"en": [Figure(label="Enrollments", …)], "de": …}`, each
# written in its locale), or one list in the job's locale.
FiguresByLocale = Mapping[str, Figures] | Figures
# The report's name: one for every locale, or the name in a given locale.
ReportName = str | Callable[[str], str]


def content_for(
    job: ReportJob,
    *,
    report_name: str,
    figures: Figures = (),
    locale: str | None = None,
) -> DeliveryContent:
    """The message's facts, taken from the job (its result and resolved parameters), for a
    message in `locale` (default: the job's)."""
    resolved = job.resolved_parameters or {}
    date_range = resolved.get("dateRange") or {}
    result = job.result
    return DeliveryContent(
        report_name=report_name,
        report_type=job.report_type,
        format=job.format,
        job_status=job.status.value,
        locale=locale or job.locale,
        period_start=_parse(date_range.get("start")),
        period_end=_parse(date_range.get("end")),
        period_first_day=date_range.get("from"),
        period_last_day=date_range.get("to"),
        timezone=str(resolved.get("timezone") or "UTC"),
        figures=[Figure(label=f.label, value=f.text, definition=f.definition) for f in figures],
        file_name=result.file_name if result else None,
        content_type=result.content_type if result else None,
        size_bytes=result.size_bytes if result else None,
        row_count=result.row_count if result else None,
        checksum_sha256=result.checksum_sha256 if result else None,
        storage_key=result.storage_key if result else None,
        file_expires_at=job.expires_at,
    )


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str) and value:
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return None


def _entry(
    settings: Settings,
    job: ReportJob | None,
    *,
    channel: DeliveryChannel,
    kind: DeliveryKind,
    mode: DeliveryMode,
    recipient: Recipient,
    content: DeliveryContent,
    owner_user_id: str | None,
    schedule_id: PydanticObjectId | None,
    link_expires_at: datetime | None,
    now: datetime,
) -> ReportDelivery:
    delivery_id = PydanticObjectId()
    return ReportDelivery(
        id=delivery_id,
        job_id=job.id if job else None,
        schedule_id=schedule_id,
        owner_user_id=owner_user_id,
        channel=channel,
        kind=kind,
        mode=mode,
        recipient=recipient,
        content=content,
        idempotency_id=str(delivery_id),
        max_attempts=settings.delivery_max_attempts,
        next_attempt_at=now,
        link_expires_at=link_expires_at,
        created_at=now,
        updated_at=now,
    )


def plan_deliveries(
    job: ReportJob,
    config: DeliveryConfig,
    endpoints: Sequence[WebhookEndpoint],
    settings: Settings,
    *,
    report_name: ReportName,
    figures: FiguresByLocale = (),
    parameters: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    now: datetime | None = None,
) -> list[ReportDelivery]:
    """One delivery per e-mail recipient and per enabled webhook endpoint for a COMPLETED job
    (pure: nothing is read or written). `job.result` and `job.expires_at` must be those the
    commit stores. An empty result follows `config.empty_result`: skip plans nothing, notice
    plans a short message without a file to every recipient and webhook. Each e-mail is
    written in its recipient's locale (else the job's), with the figures in that locale when
    `figures` has them, and the run's `parameters` in words (by locale) when given; a webhook's
    content is in the job's locale. A schedule's e-mails can be unsubscribed from."""
    assert job.status == JobStatus.COMPLETED and job.result is not None, "a completed job"
    now = now or utcnow()
    file_expires = as_utc(job.expires_at) if job.expires_at else None
    link_expires = now + timedelta(days=settings.delivery_link_ttl_days)
    if file_expires is not None:
        link_expires = min(link_expires, file_expires)  # never outlives the file
    by_locale = figures if isinstance(figures, Mapping) else {job.locale: figures}
    kind = DeliveryKind.REPORT
    if job.result.row_count == 0:
        if config.empty_result == EmptyResultPolicy.SKIP:
            return []
        if config.empty_result == EmptyResultPolicy.NOTICE:
            kind = DeliveryKind.NOTICE
    contents: dict[str, DeliveryContent] = {}

    def content_in(locale: str) -> DeliveryContent:
        if locale not in contents:
            name = report_name(locale) if callable(report_name) else report_name
            shown = by_locale.get(locale, by_locale.get(job.locale, ()))
            content = content_for(job, report_name=name, figures=shown, locale=locale)
            described = (parameters or {}).get(locale) or (parameters or {}).get(job.locale, ())
            content.parameters = [Parameter(label=k, value=v) for k, v in described]
            content.unsubscribe = job.schedule_id is not None and not job.test_run
            if kind == DeliveryKind.NOTICE:
                content.subject = translate(locale, "{report}: no rows this period").format(
                    report=name
                )
                content.text = translate(
                    locale,
                    "The report {report!r} ran and found no rows for this period, "
                    "so no file is sent.",
                ).format(report=name)
            contents[locale] = content
        return contents[locale]

    common: dict[str, Any] = {
        "kind": kind,
        "mode": config.mode,
        "owner_user_id": job.requested_by.user_id,
        "schedule_id": job.schedule_id,
        "link_expires_at": link_expires if kind == DeliveryKind.REPORT else None,
        "now": now,
    }
    planned = [
        _entry(
            settings,
            job,
            channel=DeliveryChannel.EMAIL,
            recipient=r,
            content=content_in(r.locale or job.locale),
            **common,
        )
        for r in config.recipients
        if r.address
    ]
    wanted = set(config.webhook_endpoint_ids)
    for endpoint in endpoints:
        if endpoint.id in wanted and endpoint.disabled_at is None:
            recipient = Recipient(endpoint_id=endpoint.id, url=endpoint.url)
            planned.append(
                _entry(
                    settings,
                    job,
                    channel=endpoint.kind.channel,
                    recipient=recipient,
                    content=content_in(job.locale),
                    **common,
                )
            )
    return planned


def plan_notice(
    settings: Settings,
    *,
    recipient: Recipient,
    subject: str,
    text: str,
    report_name: str,
    report_type: str,
    job: ReportJob | None = None,
    schedule_id: PydanticObjectId | None = None,
    now: datetime | None = None,
    locale: str | None = None,
) -> ReportDelivery:
    """A short e-mail without a file: a scheduled run that failed for good, a schedule that
    paused itself (say why and how to resume in `text`, written in `locale`: the recipient's,
    else the job's)."""
    content = DeliveryContent(
        report_name=report_name,
        report_type=report_type,
        format=job.format if job else "",
        job_status=job.status.value if job else "",
        locale=locale or recipient.locale or (job.locale if job else DEFAULT_LOCALE),
        subject=subject,
        text=text,
    )
    return _entry(
        settings,
        job,
        channel=DeliveryChannel.EMAIL,
        kind=DeliveryKind.NOTICE,
        mode=DeliveryMode.LINK,
        recipient=recipient,
        content=content,
        owner_user_id=recipient.user_id,
        schedule_id=schedule_id or (job.schedule_id if job else None),
        link_expires_at=None,
        now=now or utcnow(),
    )


FencedUpdate = Callable[[Any], Awaitable[bool]]
# Whether the deliveries are still wanted, asked inside the commit's transaction after the
# fenced update (a schedule paused or deleted meanwhile wants none).
StillWanted = Callable[[Any], Awaitable[bool]]


# Which of the planned deliveries go out, decided inside the commit's transaction (a schedule's
# alert: app.reports.schedules.alerts.gate), with the state it moves written in `session`.
ChooseDeliveries = Callable[[Sequence[ReportDelivery], Any], Awaitable[Sequence[ReportDelivery]]]


async def commit_with_deliveries(
    client: AsyncMongoClient[Any],
    fenced_update: FencedUpdate,
    deliveries: Sequence[ReportDelivery],
    still_wanted: StillWanted | None = None,
    choose: ChooseDeliveries | None = None,
) -> bool:
    """Runs the job's fenced commit and inserts its deliveries in one transaction.
    `fenced_update(session)` is the executor's compare-and-set on the job (passing `session`
    to its update) and says whether it applied; when it did not (another worker holds the job)
    nothing is written. When `still_wanted(session)` says no, the job is committed without its
    deliveries. `choose(deliveries, session)`, when given, decides in the same transaction
    which of them go out (and writes what it decided with `session`): an evaluation, its
    state and the deliveries it allows are committed together or not at all."""
    if not deliveries and choose is None:
        return await fenced_update(None)

    async def in_transaction(session: Any) -> bool:
        if not await fenced_update(session):
            return False  # nothing was written: the (empty) transaction commits as nothing
        if still_wanted is None or await still_wanted(session):
            chosen = deliveries if choose is None else await choose(deliveries, session)
            await repository.insert_many(chosen, session=session)
        return True

    # `with_transaction` retries a transient conflict (the job's heartbeat renewing the lease
    # at the same moment, a pause cancelling the job), so a race with our own heartbeat never
    # fails the job and a race with a pause is decided one way or the other, never both.
    async with client.start_session() as session:
        return bool(await session.with_transaction(in_transaction))
