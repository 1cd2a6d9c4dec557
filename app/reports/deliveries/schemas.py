"""HTTP shapes of deliveries and webhook endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.common.schemas import ApiInput, ApiModel
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryKind,
    DeliveryStatus,
    ReportDelivery,
    WebhookEndpoint,
)


class DeliveryOut(ApiModel):
    """One message to one recipient, as the outbox records it."""

    id: str
    job_id: str | None = None
    channel: DeliveryChannel
    kind: DeliveryKind
    recipient: str = Field(description="The e-mail address, or the webhook URL")
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
            channel=doc.channel,
            kind=doc.kind,
            recipient=doc.recipient.address or doc.recipient.url or "",
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
    url: str
    description: str | None = None
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
            url=endpoint.url,
            description=endpoint.description,
            disabled=endpoint.disabled_at is not None,
            disabled_reason=endpoint.disabled_reason,
            secret=secret,
        )
