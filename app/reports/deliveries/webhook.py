"""The webhook channel: one signed POST (Standard Webhooks), SSRF-checked right before it.

The host is resolved and checked again at send time and the request goes to the checked address
(the name stays in the Host header and the TLS server name), so a DNS answer changed since the
URL was accepted cannot point the call inside our network. Redirects are not followed, the
timeout is short and only the first 200 characters of the answer are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from app.common.ssrf import UnsafeDestination, parse_networks, resolve_destination
from app.common.time import utcnow
from app.config import Environment, Settings
from app.reports.deliveries.change_text import change_data
from app.reports.deliveries.models import DeliveryKind, ReportDelivery
from app.reports.deliveries.signing import signature_headers

EXCERPT_CHARS = 200
USER_AGENT = "report-system-webhooks/1"


@dataclass(frozen=True)
class WebhookOutcome:
    ok: bool
    permanent: bool = False
    gone: bool = False  # 410: the receiver asks us to stop calling this endpoint
    http_status: int | None = None
    excerpt: str | None = None
    error: str | None = None


def webhook_id(delivery: ReportDelivery) -> str:
    return f"msg_{delivery.idempotency_id}"


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def payload(delivery: ReportDelivery, link: str | None) -> bytes:
    content = delivery.content
    event = "report.notice" if delivery.kind == DeliveryKind.NOTICE else "report.completed"
    data: dict[str, Any] = {
        "jobId": str(delivery.job_id) if delivery.job_id else None,
        "scheduleId": str(delivery.schedule_id) if delivery.schedule_id else None,
        "reportType": content.report_type,
        "reportName": content.report_name,
        "format": content.format,
        "status": content.job_status,
        "rowCount": content.row_count,
        "fileName": content.file_name,
        "sizeBytes": content.size_bytes,
        "sha256": content.checksum_sha256,
        "downloadUrl": link,
        "downloadExpiresAt": _iso(delivery.link_expires_at) if link else None,
        "period": {
            "start": _iso(content.period_start),
            "end": _iso(content.period_end),
            "timezone": content.timezone,
        },
        "message": content.text,
    }
    if content.alert is not None:  # sent because an alert fired or recovered
        data["alert"] = {"state": content.alert.state, "conditions": content.alert.conditions}
    if content.changes is not None:  # a change report: the counts and first changed rows
        data["changes"] = change_data(content)
    body = {"type": event, "timestamp": _iso(utcnow()), "data": data}
    return json.dumps(body, separators=(",", ":")).encode()


def signed_headers(delivery: ReportDelivery, secrets: list[str], body: bytes) -> dict[str, str]:
    """The headers of a webhook call: its Standard Webhooks id, timestamp and signatures."""
    return {**signature_headers(secrets, webhook_id(delivery), body), "user-agent": USER_AGENT}


async def post(
    settings: Settings, delivery: ReportDelivery, body: bytes, headers: dict[str, str]
) -> WebhookOutcome:
    """POSTs JSON `body` to the delivery's URL, resolved and SSRF-checked now, and says how
    the endpoint answered (what is worth another attempt, what is not)."""
    url = delivery.recipient.url or ""
    try:
        destination = await resolve_destination(
            url,
            allowed=parse_networks(settings.webhook_allowed_networks),
            require_https=settings.app_env == Environment.PRODUCTION,
        )
    except UnsafeDestination as exc:
        return WebhookOutcome(ok=False, permanent=True, error=f"refused: {exc}")
    headers = {
        **headers,
        "content-type": "application/json",
        "host": destination.host_header(),
    }
    extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
    timeout = httpx.Timeout(
        settings.webhook_timeout_seconds, connect=min(5.0, settings.webhook_timeout_seconds)
    )
    try:
        async with (
            httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as client,
            client.stream(
                "POST",
                destination.connect_url(),
                content=body,
                headers=headers,
                extensions=extensions,
            ) as response,
        ):
            excerpt = await _excerpt(response)
    except httpx.TimeoutException:
        return WebhookOutcome(ok=False, error="the endpoint did not answer in time")
    except httpx.HTTPError as exc:
        return WebhookOutcome(ok=False, error=f"the endpoint is unreachable: {type(exc).__name__}")
    status = response.status_code
    if 200 <= status < 300:
        return WebhookOutcome(ok=True, http_status=status, excerpt=excerpt)
    if status == 410:
        return WebhookOutcome(
            ok=False,
            permanent=True,
            gone=True,
            http_status=status,
            excerpt=excerpt,
            error="the endpoint answered 410 Gone: it is disabled",
        )
    # Timeouts, throttling and server errors pass; the rest (redirects included: we do not
    # follow them) will not change by trying again.
    retry = status >= 500 or status in (408, 425, 429)
    return WebhookOutcome(
        ok=False,
        permanent=not retry,
        http_status=status,
        excerpt=excerpt,
        error=f"the endpoint answered HTTP {status}",
    )


async def _excerpt(response: httpx.Response) -> str:
    """At most EXCERPT_CHARS characters of the answer: the rest is never read."""
    read = b""
    async for chunk in response.aiter_raw():
        read += chunk
        if len(read) >= EXCERPT_CHARS * 4:
            break
    return read.decode("utf-8", "replace")[:EXCERPT_CHARS]
