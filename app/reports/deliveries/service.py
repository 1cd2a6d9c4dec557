"""The rules behind the delivery endpoints (the routers stay thin): opening a delivery link,
resending a failed delivery, a caller's webhook endpoints (register, rotate, use on a job)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from beanie import PydanticObjectId
from bson.errors import InvalidId

from app.common.time import as_utc, utcnow
from app.config import Settings
from app.errors import Conflict, Forbidden, Gone, NotFound, ValidationFailed
from app.platform.repository import user_by_id
from app.reports.deliveries import repository
from app.reports.deliveries.addresses import AddressRefused
from app.reports.deliveries.links import LinkError, verify_link_token
from app.reports.deliveries.models import (
    DeliveryConfig,
    DeliveryContent,
    DeliveryMode,
    Recipient,
    ReportDelivery,
    WebhookEndpoint,
)
from app.reports.deliveries.recipients import (
    admissible_address,
    refused_field,
    user_locale,
    validate_webhook_url,
)
from app.reports.deliveries.signing import generate_secret

_NOT_A_LINK = "This delivery link is not valid."


async def open_link(
    settings: Settings, token: str, *, now: datetime | None = None
) -> tuple[ReportDelivery, DeliveryContent]:
    """The delivery a link names and what to stream (`content.storage_key`, `file_name`,
    `content_type`, `size_bytes`). A forged or unknown link is a 404 that says nothing more;
    an expired or revoked one (schedule paused or deleted) or a file past its retention is a
    410 saying which."""
    now = now or utcnow()
    try:
        claims = verify_link_token(settings, token, now=now)
    except LinkError as exc:
        if exc.reason == "expired":
            raise Gone(str(exc), code="delivery-link-expired") from None
        raise NotFound(_NOT_A_LINK, code="delivery-link-invalid") from None
    try:
        delivery = await repository.get(PydanticObjectId(claims.delivery_id))
    except InvalidId:
        delivery = None
    if delivery is None or delivery.recipient.key() != claims.recipient:
        raise NotFound(_NOT_A_LINK, code="delivery-link-invalid")
    if delivery.link_revoked_at is not None:
        raise Gone(
            "This delivery link was revoked: its schedule was paused or deleted.",
            code="delivery-link-revoked",
        )
    content = delivery.content
    expires = content.file_expires_at
    if not content.storage_key or (expires is not None and as_utc(expires) <= now):
        raise Gone("The report file is no longer available.", code="job-file-missing")
    return delivery, content


@dataclass(frozen=True)
class LinkContact:
    """Whom to ask about a delivery link that no longer works: the report's owner."""

    name: str
    email: str | None


async def link_contact(settings: Settings, token: str) -> LinkContact | None:
    """The owner of the delivery a genuine link names (also an expired one), or None for a
    link that is not one of ours."""
    try:
        claims = verify_link_token(settings, token, expired_ok=True)
        delivery = await repository.get(PydanticObjectId(claims.delivery_id))
    except (LinkError, InvalidId):
        return None
    if delivery is None or delivery.owner_user_id is None:
        return None
    owner = await user_by_id(delivery.owner_user_id)
    return LinkContact(name=owner.name, email=owner.email) if owner is not None else None


async def resend(
    settings: Settings,
    delivery_id: str,
    *,
    user_id: str,
    is_admin: bool,
    now: datetime | None = None,
) -> ReportDelivery:
    """Puts a failed or cancelled delivery back in the outbox (owner or admin), with a fresh
    attempt budget and the same id; not one its stopped schedule revoked."""
    try:
        oid = PydanticObjectId(delivery_id)
    except InvalidId:
        raise NotFound("No such delivery.", code="delivery-not-found") from None
    delivery = await repository.get(oid)
    if delivery is None:
        raise NotFound("No such delivery.", code="delivery-not-found")
    if not is_admin and delivery.owner_user_id != user_id:
        raise Forbidden("Only the schedule's owner or an admin may resend a delivery.")
    if delivery.link_revoked_at is not None and repository.is_run_result(delivery):
        raise Conflict(
            "Its schedule was paused or deleted, which revoked its links and stopped what was "
            "not sent: it is not sent again. Resume the schedule and run it again instead.",
            code="delivery-not-resendable",
        )
    if not await repository.resend(oid, max_attempts=settings.delivery_max_attempts, now=now):
        raise Conflict(
            f"Only failed or cancelled deliveries can be resent (this one is {delivery.status}).",
            code="delivery-not-resendable",
        )
    fresh = await repository.get(oid)
    assert fresh is not None  # a sender may hold it already: its status is whatever it is now
    return fresh


# Webhook endpoints of a caller ---------------------------------------------------------------


async def register_endpoint(
    settings: Settings, user_id: str, url: str, description: str | None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the caller (SSRF-checked) and its signing secret, to show once."""
    await validate_webhook_url(settings, url, field="body.url")
    secret = generate_secret()
    endpoint = await repository.create_endpoint(
        owner_user_id=user_id, url=url, secret=secret, description=description
    )
    return endpoint, secret


async def owned_endpoint(endpoint_id: str, *, user_id: str, is_admin: bool) -> WebhookEndpoint:
    try:
        endpoint = await repository.get_endpoint(PydanticObjectId(endpoint_id))
    except InvalidId:
        endpoint = None
    if endpoint is None or not (is_admin or endpoint.owner_user_id == user_id):
        raise NotFound("No such webhook endpoint.", code="webhook-not-found")
    return endpoint


async def rotate_secret(
    settings: Settings, endpoint_id: str, *, user_id: str, is_admin: bool
) -> tuple[WebhookEndpoint, str]:
    """A new secret signs from now on; the old one keeps signing for
    WEBHOOK_SECRET_OVERLAP_HOURS (both signatures are sent meanwhile)."""
    endpoint = await owned_endpoint(endpoint_id, user_id=user_id, is_admin=is_admin)
    assert endpoint.id is not None
    if endpoint.kind.chat:
        raise Conflict(
            f"A {endpoint.kind.value} endpoint is not signed: its URL is the secret. Replace "
            "the URL on the schedule to change it.",
            code="webhook-unsigned",
        )
    secret = generate_secret()
    await repository.add_secret(
        endpoint.id,
        secret,
        overlap=timedelta(hours=settings.webhook_secret_overlap_hours),
        now=utcnow(),
    )
    return endpoint, secret


async def delete_endpoint(
    endpoint_id: str,
    *,
    user_id: str,
    is_admin: bool,
    in_use: Callable[[WebhookEndpoint], Awaitable[None]],
) -> WebhookEndpoint:
    """Deletes an endpoint of the caller's (an admin: anyone's) that `in_use` does not refuse
    (the schedules that still call it); its waiting deliveries are cancelled."""
    endpoint = await owned_endpoint(endpoint_id, user_id=user_id, is_admin=is_admin)
    assert endpoint.id is not None
    await in_use(endpoint)
    await repository.cancel_pending_for_endpoint(endpoint.id, "the endpoint was deleted")
    await repository.delete_endpoint(endpoint.id)
    return endpoint


async def endpoint_for_job(settings: Settings, user_id: str, url: str) -> PydanticObjectId:
    """An on-demand job's `webhookUrl`: one of the caller's endpoints (registered with
    POST /api/v1/reports/webhooks or by one of their schedules), so it is signed with a secret
    the caller already holds; checked again now (SSRF)."""
    endpoint = await WebhookEndpoint.find_one(
        {"owner_user_id": user_id, "url": url, "disabled_at": None}
    )
    if endpoint is None or endpoint.id is None:
        raise ValidationFailed.one(
            "body.webhookUrl",
            f"{url!r} is not one of your webhook endpoints: register it first with "
            "POST /api/v1/reports/webhooks (the answer holds its signing secret)",
            type="unknown-webhook",
        )
    await validate_webhook_url(settings, url, field="body.webhookUrl")
    return endpoint.id


async def on_demand_config(
    settings: Settings,
    *,
    user_id: str,
    email: str | None,
    notify_email: bool,
    webhook_url: str | None,
) -> DeliveryConfig | None:
    """What POST /jobs `notify` / `webhookUrl` ask for (None: nothing)."""
    if not notify_email and not webhook_url:
        return None
    config = DeliveryConfig(mode=DeliveryMode.LINK)
    if notify_email:
        # The address the platform holds now (the token's may be stale); a caller the platform
        # does not know gets mail only at an address that passes the recipient rules.
        user = await user_by_id(user_id)
        email = user.email if user is not None else email
        if not email:
            raise ValidationFailed.one("body.notify.email", "your account has no e-mail address")
        try:
            address = await admissible_address(settings, email, platform_user=user is not None)
        except AddressRefused as exc:
            raise refused_field(exc, "body.notify.email") from None
        locale = user_locale(user)
        config.recipients = [Recipient(user_id=user_id, address=address, locale=locale)]
    if webhook_url:
        config.webhook_endpoint_ids = [await endpoint_for_job(settings, user_id, webhook_url)]
    return config
