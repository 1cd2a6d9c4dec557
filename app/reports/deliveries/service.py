"""The rules behind the delivery endpoints (the routers stay thin): opening a delivery link and
resending a failed delivery."""

from __future__ import annotations

from datetime import datetime

from beanie import PydanticObjectId
from bson.errors import InvalidId

from app.common.time import as_utc, utcnow
from app.config import Settings
from app.errors import Conflict, Forbidden, Gone, NotFound
from app.reports.deliveries import repository
from app.reports.deliveries.links import LinkError, verify_link_token
from app.reports.deliveries.models import DeliveryContent, ReportDelivery

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
        raise Gone("The report file is no longer available.", code="report-file-missing")
    return delivery, content


async def resend(
    settings: Settings,
    delivery_id: str,
    *,
    user_id: str,
    is_admin: bool,
    now: datetime | None = None,
) -> ReportDelivery:
    """Puts a failed or cancelled delivery back in the outbox (owner or admin), with a fresh
    attempt budget and the same id."""
    try:
        oid = PydanticObjectId(delivery_id)
    except InvalidId:
        raise NotFound("No such delivery.", code="delivery-not-found") from None
    delivery = await repository.get(oid)
    if delivery is None:
        raise NotFound("No such delivery.", code="delivery-not-found")
    if not is_admin and delivery.owner_user_id != user_id:
        raise Forbidden("Only the schedule's owner or an admin may resend a delivery.")
    if not await repository.resend(oid, max_attempts=settings.delivery_max_attempts, now=now):
        raise Conflict(
            f"Only failed or cancelled deliveries can be resent (this one is {delivery.status}).",
            code="delivery-not-resendable",
        )
    fresh = await repository.get(oid)
    assert fresh is not None  # a sender may hold it already: its status is whatever it is now
    return fresh
