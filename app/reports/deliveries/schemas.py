"""HTTP shapes of deliveries and webhook endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.common.schemas import ApiInput, ApiModel
from app.config import Settings
from app.reports.deliveries.chat import redact_url
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryKind,
    DeliveryStatus,
    EndpointKind,
    ReportDelivery,
    WebhookEndpoint,
)
from app.reports.deliveries.recipients import allowed_domains


class DeliveryOut(ApiModel):
    """One message to one recipient, as the outbox records it."""

    id: str
    job_id: str | None = None
    schedule_id: str | None = None
    created_at: datetime = Field(description="When it was planned (its job finished)")
    channel: DeliveryChannel
    kind: DeliveryKind
    recipient: str = Field(
        description="The e-mail address, or the webhook URL (a Slack or Teams URL redacted)"
    )
    status: DeliveryStatus
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next")
    last_error: str | None = None
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    http_status: int | None = Field(default=None, description="Webhooks: the answer's status")
    idempotency_id: str = Field(
        description="The same on every attempt (e-mail Message-ID, webhook-id): receivers drop "
        "duplicates by it"
    )

    @classmethod
    def from_document(cls, doc: ReportDelivery) -> DeliveryOut:
        return cls(
            id=str(doc.id),
            job_id=str(doc.job_id) if doc.job_id else None,
            schedule_id=str(doc.schedule_id) if doc.schedule_id else None,
            created_at=doc.created_at,
            channel=doc.channel,
            kind=doc.kind,
            recipient=_shown_recipient(doc),
            status=doc.status,
            attempts=doc.attempts,
            max_attempts=doc.max_attempts,
            next_attempt_at=doc.next_attempt_at if doc.status == DeliveryStatus.PENDING else None,
            last_error=doc.last_error,
            sent_at=doc.sent_at,
            failed_at=doc.failed_at,
            http_status=doc.http_status,
            idempotency_id=doc.idempotency_id,
        )


def _shown_recipient(doc: ReportDelivery) -> str:
    if doc.recipient.address:
        return doc.recipient.address
    url = doc.recipient.url or ""
    return redact_url(url) if doc.channel in (DeliveryChannel.SLACK, DeliveryChannel.TEAMS) else url


class WebhookCreate(ApiInput):
    """An endpoint of yours for on-demand jobs' `webhookUrl` (schedules register theirs in
    their `webhooks`). The signing secret is in the answer, once."""

    url: str = Field(min_length=8, max_length=2000)
    description: str | None = Field(default=None, max_length=200)

    model_config = {
        "json_schema_extra": {
            "examples": [{"url": "https://hooks.example.com/reports", "description": "CI"}]
        }
    }


class WebhookOut(ApiModel):
    id: str
    url: str = Field(description="The URL; a Slack or Teams URL is a secret and shown redacted")
    kind: EndpointKind = Field(
        default=EndpointKind.WEBHOOK,
        description="`webhook` (signed JSON), `slack` or `teams` (a channel message)",
    )
    description: str | None = None
    created_at: datetime
    disabled: bool = Field(description="The endpoint answered 410 Gone: it receives nothing")
    disabled_reason: str | None = None
    secret: str | None = Field(
        default=None,
        description="The signing secret (`whsec_...`): shown ONCE, when the endpoint is "
        "created or its secret rotated; null otherwise",
    )

    @classmethod
    def from_document(cls, endpoint: WebhookEndpoint, secret: str | None = None) -> WebhookOut:
        return cls(
            id=str(endpoint.id),
            url=redact_url(endpoint.url) if endpoint.kind.chat else endpoint.url,
            kind=endpoint.kind,
            description=endpoint.description,
            created_at=endpoint.created_at,
            disabled=endpoint.disabled_at is not None,
            disabled_reason=endpoint.disabled_reason,
            secret=secret,
        )


class OptionOut(ApiModel):
    code: str
    description: str


class DeliveryOptionsOut(ApiModel):
    """What a schedule's (and a job's) delivery fields accept, and the limits that apply."""

    modes: list[OptionOut] = Field(description="A schedule's `delivery`")
    empty_result_policies: list[OptionOut] = Field(description="A schedule's `emptyResult`")
    audiences: list[OptionOut] = Field(description="A schedule's `audience`")
    max_recipients: int
    allowed_recipient_domains: list[str] = Field(
        description="Domains external addresses may have; empty: those of the platform's users"
    )
    attachment_max_mb: float = Field(description="Larger files are sent as a link")
    link_ttl_days: int = Field(description="Delivery links expire then (or with the file)")
    webhook_signature: str
    max_attempts: int = Field(description="Sending attempts before a delivery is `failed`")

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryOptionsOut:
        return cls(
            modes=[
                OptionOut(code="attach", description="the file attached (a link when too big)"),
                OptionOut(code="link", description="a signed, expiring download link only"),
                OptionOut(code="both", description="the file attached and a link"),
            ],
            empty_result_policies=[
                OptionOut(code="send", description="send as usual (an empty file)"),
                OptionOut(code="skip", description="record the run, send nothing"),
                OptionOut(code="notice", description="a short 'no rows this period' message"),
            ],
            audiences=[
                OptionOut(
                    code="owner",
                    description="one run in the owner's scope, sent to every recipient",
                ),
                OptionOut(
                    code="recipient",
                    description="each platform-user recipient gets a run in their own scope",
                ),
            ],
            max_recipients=settings.delivery_max_recipients,
            allowed_recipient_domains=sorted(allowed_domains(settings)),
            attachment_max_mb=settings.delivery_attachment_max_mb,
            link_ttl_days=settings.delivery_link_ttl_days,
            webhook_signature="Standard Webhooks: webhook-id, webhook-timestamp, "
            "webhook-signature = v1,base64(HMAC-SHA256(secret, id.timestamp.body))",
            max_attempts=settings.delivery_max_attempts,
        )


class SkippedRecipientOut(ApiModel):
    """Someone a run did not send to: a listed recipient, or a department without a manager."""

    user_id: str | None = None
    address: str | None = None
    reason: str = Field(
        description="`inactive`: deactivated in the platform (sent to again once reactivated); "
        "`deleted`: no longer a platform user; `no-manager`: a department of a "
        "department-managers audience without an active manager (its data is in the report "
        "of a manager above it, if any)"
    )
    department_id: str | None = None
    department_name: str | None = None
