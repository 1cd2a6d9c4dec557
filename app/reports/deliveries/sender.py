"""The delivery sender: claims due deliveries one at a time with a lease, sends, records.

Guarantee: at least once, with a stable id. A delivery is recorded `sent` only after the SMTP
server or the webhook accepted it; a sender that dies after the message left but before the
record is written leaves the delivery `sending` with a lease that expires, and the next sender
sends it again with the same Message-ID / webhook-id, so receivers can drop the duplicate.
Failures are retried with exponential back-off and jitter up to `max_attempts`, then the
delivery is `failed` with the reason. Nothing here blocks report jobs: the sender only reads
the job's stored file.

Every attempt ends within `DELIVERY_ATTEMPT_DEADLINE_SECONDS` (connect, send and every read
together), and the lease outlasts that deadline (the settings refuse otherwise), so a receiver
that answers a byte at a time is cut off and never gets the same delivery twice at once. The
worker runs one sender loop per channel: a stuck webhook never holds back an e-mail.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from app.common.time import as_utc, utcnow
from app.config import Settings
from app.observability import DELIVERIES
from app.reports.deliveries import chat, email, outbox, recipients, repository, webhook, zipping
from app.reports.deliveries.links import issue_link_token, link_url
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryContent,
    DeliveryKind,
    DeliveryMode,
    DeliveryStatus,
    EndpointKind,
    ReportDelivery,
)
from app.storage import Storage

log = structlog.get_logger(__name__)
DEFAULT_BATCH = 20


class SenderResources(Protocol):
    """What the sender needs of `app.runtime.resources.Resources`."""

    settings: Settings
    storage: Storage


@dataclass(frozen=True)
class SendOutcome:
    """How one attempt at a delivery ended."""

    ok: bool
    permanent: bool = False  # another attempt cannot help
    cancelled: bool = False  # its schedule was stopped before the message left
    gone: bool = False  # the webhook answered 410: disable the endpoint
    error: str | None = None
    provider_message_id: str | None = None
    http_status: int | None = None
    excerpt: str | None = None


STOPPED = SendOutcome(ok=False, cancelled=True, error=repository.SCHEDULE_STOPPED)


def backoff_seconds(settings: Settings, attempt: int, rng: random.Random | None = None) -> float:
    """Exponential from DELIVERY_BACKOFF_SECONDS, capped, with "equal jitter": half fixed, half
    random, so a burst of failures does not come back as a burst."""
    base: float = min(
        settings.delivery_backoff_seconds * 2 ** max(0, attempt - 1),
        settings.delivery_backoff_max_seconds,
    )
    jitter: float = (rng or random).uniform(0, base / 2)
    return base / 2 + jitter


async def send_due(
    resources: SenderResources,
    *,
    worker_id: str,
    now: datetime | None = None,
    limit: int = DEFAULT_BATCH,
    channel: DeliveryChannel | None = None,
) -> int:
    """Sends up to `limit` due deliveries (of `channel`, or of any); returns how many it
    handled (sent, retried, failed or cancelled). `now` is for tests: it decides what is due
    and when a retry comes back."""
    settings = resources.settings
    handled = 0
    while handled < limit:
        clock = now or utcnow()
        token = secrets.token_hex(8)
        delivery = await repository.claim_next(
            owner=worker_id,
            token=token,
            lease_seconds=settings.delivery_lease_seconds,
            now=clock,
            channel=channel,
        )
        if delivery is None:
            break
        handled += 1
        await _handle(resources, delivery, token, clock)
    return handled


async def run_sender(
    resources: SenderResources,
    *,
    worker_id: str,
    stop: asyncio.Event,
    wake: asyncio.Event | None = None,
    interval_seconds: float = 5.0,
    channel: DeliveryChannel | None = None,
) -> None:
    """A delivery loop (the worker runs one per `channel`, its lanes): sends what is due, then
    sleeps `interval_seconds` or until `wake` is set (after a commit that planned deliveries)
    or `stop` is. An error (the database away) is logged and retried on the next round: it
    never ends the loop."""
    wake = wake or asyncio.Event()
    while not stop.is_set():
        try:
            handled = await send_due(resources, worker_id=worker_id, channel=channel)
        except Exception:
            log.exception("delivery_round_failed")
            handled = 0
        if handled >= DEFAULT_BATCH:
            continue  # more may be due: no pause
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
        await asyncio.wait(waiters, timeout=interval_seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        wake.clear()


async def _handle(
    resources: SenderResources, delivery: ReportDelivery, token: str, now: datetime
) -> None:
    assert delivery.id is not None
    settings = resources.settings
    bound = log.bind(delivery_id=str(delivery.id), channel=delivery.channel.value)
    if delivery.attempts > delivery.max_attempts:
        # Its last sender died while sending: the message may or may not have left.
        error = f"gave up after {delivery.max_attempts} attempts; the last one was interrupted"
        await _record(
            settings, delivery, token, now, SendOutcome(ok=False, error=error), final=True
        )
        return
    try:
        outcome = await _attempt(resources, delivery, now)
    except Exception as exc:  # a bug or a storage error: counted as a failed attempt
        bound.exception("delivery_send_crashed")
        outcome = SendOutcome(ok=False, error=f"internal error: {type(exc).__name__}")
    if outcome.gone:
        try:
            await _disable_gone_endpoint(settings, delivery)
        except Exception:  # the next call meets the 410 again: the attempt is still recorded
            bound.exception("delivery_endpoint_disable_failed")
    await _record(settings, delivery, token, now, outcome)
    result = "sent" if outcome.ok else "cancelled" if outcome.cancelled else "failed"
    DELIVERIES.labels(delivery.channel.value, result).inc()
    bound.info("delivery_attempt", outcome=result, error=outcome.error, attempt=delivery.attempts)


async def _record(
    settings: Settings,
    delivery: ReportDelivery,
    token: str,
    now: datetime,
    outcome: SendOutcome,
    *,
    final: bool = False,
) -> None:
    """Writes how the attempt ended, if this sender still holds the delivery. A failure is
    retried after a back-off unless it is permanent, the attempts are used up or the attempt
    was `final`."""
    assert delivery.id is not None
    facts = {
        "http_status": outcome.http_status,
        "response_excerpt": outcome.excerpt,
    }
    if outcome.ok:
        changes = {
            **facts,
            "status": DeliveryStatus.SENT.value,
            "sent_at": now,
            "last_error": None,
            "provider_message_id": outcome.provider_message_id,
        }
    elif outcome.cancelled:
        changes = {**facts, "status": DeliveryStatus.CANCELLED.value, "last_error": outcome.error}
    elif outcome.permanent or final or delivery.attempts >= delivery.max_attempts:
        error = outcome.error or "unknown error"
        if not (outcome.permanent or final):
            error = f"gave up after {delivery.attempts} attempts; last error: {error}"
        changes = {
            **facts,
            "status": DeliveryStatus.FAILED.value,
            "failed_at": now,
            "last_error": error,
        }
    else:
        delay = backoff_seconds(settings, delivery.attempts)
        changes = {
            **facts,
            "status": DeliveryStatus.PENDING.value,
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": outcome.error,
        }
    if not await repository.finish_held(delivery.id, token, changes):
        log.warning("delivery_record_refused", delivery_id=str(delivery.id))


def _link(settings: Settings, delivery: ReportDelivery, now: datetime) -> str | None:
    if delivery.kind != DeliveryKind.REPORT or delivery.link_expires_at is None:
        return None
    expires = as_utc(delivery.link_expires_at)
    if expires <= now or delivery.link_revoked_at is not None:
        return None
    token = issue_link_token(
        settings,
        delivery_id=str(delivery.id),
        recipient=delivery.recipient.key(),
        expires_at=expires,
    )
    return link_url(settings, token)


async def _attempt(
    resources: SenderResources, delivery: ReportDelivery, now: datetime
) -> SendOutcome:
    """One attempt, cut off after `DELIVERY_ATTEMPT_DEADLINE_SECONDS` whatever the other end
    does: the per-read timeouts of the channels alone let a receiver that sends a byte now and
    then hold a call for hours."""
    deadline = resources.settings.delivery_attempt_deadline_seconds
    try:
        async with asyncio.timeout(deadline) as limit:
            return await _send(resources, delivery, now)
    except TimeoutError:
        if not limit.expired():
            raise  # a timeout of its own, not the deadline: a crash like any other
        what = _RECEIVER[delivery.channel]
        return SendOutcome(
            ok=False, error=f"the {what} did not finish within the {deadline:g} s deadline"
        )


async def _send(resources: SenderResources, delivery: ReportDelivery, now: datetime) -> SendOutcome:
    """Prepares the message, then sends it unless its schedule was stopped: looked at when
    it was claimed and again at the last moment, so a pause or delete acknowledged before that
    is never sent."""
    of_run = repository.is_run_result(delivery)
    if of_run and delivery.link_revoked_at is not None:
        return STOPPED
    if delivery.channel == DeliveryChannel.EMAIL:
        ready = await _email_call(resources, delivery, now)
    else:
        ready = await _webhook_call(resources.settings, delivery, now)
    if isinstance(ready, SendOutcome):
        return ready  # refused before anything was sent
    assert delivery.id is not None
    if of_run and await repository.link_revoked(delivery.id):
        return STOPPED
    return await ready()


SendCall = Callable[[], Awaitable[SendOutcome]]
# Who did not finish in time, as a delivery's error says it.
_RECEIVER = {
    DeliveryChannel.EMAIL: "SMTP server",
    DeliveryChannel.WEBHOOK: "webhook",
    DeliveryChannel.SLACK: "Slack webhook",
    DeliveryChannel.TEAMS: "Teams webhook",
}


async def _email_call(
    resources: SenderResources, delivery: ReportDelivery, now: datetime
) -> SendOutcome | SendCall:
    settings = resources.settings
    refused = await recipients.send_time_refusal(settings, delivery.recipient)
    if refused is not None:
        return SendOutcome(ok=False, permanent=True, error=refused)
    content = delivery.content
    limit = int(settings.delivery_attachment_max_mb * 1_048_576)
    wants_file = delivery.kind == DeliveryKind.REPORT and delivery.mode in (
        DeliveryMode.ATTACH,
        DeliveryMode.BOTH,
    )
    attachment = await _attachment(resources.storage, content, limit) if wants_file else None
    link = _link(settings, delivery, now)
    if delivery.mode == DeliveryMode.ATTACH and attachment is not None:
        link = None  # attached: no link wanted
    if delivery.kind == DeliveryKind.REPORT and attachment is None and link is None:
        return SendOutcome(ok=False, permanent=True, error="the file is no longer available")
    try:
        message = email.build_message(settings, delivery, link=link, attachment=attachment)
    except email.MessageRefused as exc:
        return SendOutcome(ok=False, permanent=True, error=str(exc))

    async def send() -> SendOutcome:
        result = await email.send_message(settings, message)
        return SendOutcome(
            ok=result.ok,
            permanent=result.permanent,
            error=result.error,
            provider_message_id=result.provider_message_id,
        )

    return send


async def _attachment(
    storage: Storage, content: DeliveryContent, limit: int
) -> email.Attachment | None:
    """The stored file to attach: as it is when it fits the limit, zipped when it is a CSV
    whose zip fits (zipping.py), else None (the message carries the link)."""
    if not content.storage_key or not content.file_name or content.size_bytes is None:
        return None
    if content.size_bytes <= limit:
        data = await _read(storage, content.storage_key, limit)
        if data is None:
            return None
        kind = content.content_type or "application/octet-stream"
        return email.Attachment(data, content.file_name, kind)
    if zipping.worth_zipping(content, limit):
        return await zipping.zipped(storage, content, limit)
    return None


async def _read(storage: Storage, key: str, limit: int) -> bytes | None:
    """The stored file, or None when it is gone (expired) or larger than announced."""
    data = bytearray()
    try:
        async for chunk in await storage.open_stream(key):
            data += chunk
            if len(data) > limit:
                return None
    except FileNotFoundError:
        return None
    return bytes(data)


async def _webhook_call(
    settings: Settings, delivery: ReportDelivery, now: datetime
) -> SendOutcome | SendCall:
    endpoint_id = delivery.recipient.endpoint_id
    endpoint = await repository.get_endpoint(endpoint_id) if endpoint_id else None
    if endpoint is None or endpoint.disabled_at is not None:
        reason = endpoint.disabled_reason if endpoint else None
        return SendOutcome(
            ok=False, permanent=True, error=f"the endpoint is disabled: {reason or 'deleted'}"
        )
    link = _link(settings, delivery, now)
    if endpoint.kind.chat:  # Slack, Teams: a channel message, unsigned (the URL is the secret)
        body = chat.body(delivery, link, teams=endpoint.kind == EndpointKind.TEAMS)
        headers = {"user-agent": chat.USER_AGENT}
    else:
        body = webhook.payload(delivery, link)
        signing = endpoint.signing_secrets(now)
        headers = webhook.signed_headers(delivery, signing, body)

    async def send() -> SendOutcome:
        result = await webhook.post(settings, delivery, body, headers)
        return SendOutcome(
            ok=result.ok,
            permanent=result.permanent,
            gone=result.gone,
            error=result.error,
            http_status=result.http_status,
            excerpt=result.excerpt,
        )

    return send


async def _disable_gone_endpoint(settings: Settings, delivery: ReportDelivery) -> None:
    """A webhook answered 410 Gone: its endpoint is disabled and its owner told (once, by the
    sender that disabled it). Done after the attempt, outside its deadline."""
    endpoint_id = delivery.recipient.endpoint_id
    endpoint = await repository.get_endpoint(endpoint_id) if endpoint_id else None
    if endpoint is None or endpoint.id is None:
        return
    if await repository.disable_endpoint(endpoint.id, "the endpoint answered 410 Gone"):
        await outbox.insert_endpoint_gone_notice(settings, endpoint, delivery)
