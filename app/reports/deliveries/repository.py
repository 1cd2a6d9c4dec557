"""Every MongoDB query on deliveries and webhook endpoints. State changes are compare-and-set
updates fenced by the sender's lease token, as for report jobs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ASCENDING, ReturnDocument

from app.common.time import utcnow
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryKind,
    DeliveryStatus,
    EndpointKind,
    EndpointSecret,
    ReportDelivery,
    WebhookEndpoint,
)
from app.reports.jobs.models import JobStatus


def _coll() -> Any:
    return ReportDelivery.get_pymongo_collection()


async def insert_many(deliveries: Sequence[ReportDelivery], session: Any = None) -> None:
    """Inserts planned deliveries (ids already set) — inside the job's commit when given its
    session."""
    if deliveries:
        await ReportDelivery.insert_many(list(deliveries), session=session)


async def claim_next(
    *,
    owner: str,
    token: str,
    lease_seconds: int,
    now: datetime,
    channel: DeliveryChannel | None = None,
) -> ReportDelivery | None:
    """Takes one due delivery (of `channel`, or of any): pending and due, or sending with an
    expired lease (its sender died). Counts the attempt at the claim so a crash loop still
    ends."""
    due: dict[str, Any] = {
        "$or": [
            {"status": DeliveryStatus.PENDING.value, "next_attempt_at": {"$lte": now}},
            {"status": DeliveryStatus.SENDING.value, "lease_expires_at": {"$lte": now}},
        ]
    }
    if channel is not None:
        due["channel"] = channel.value
    doc = await _coll().find_one_and_update(
        due,
        {
            "$set": {
                "status": DeliveryStatus.SENDING.value,
                "lease_owner": owner,
                "lease_token": token,
                "lease_expires_at": now + timedelta(seconds=lease_seconds),
                "updated_at": now,
            },
            "$inc": {"attempts": 1},
        },
        sort=[("next_attempt_at", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )
    return ReportDelivery.model_validate(doc) if doc else None


async def finish_held(delivery_id: PydanticObjectId, token: str, changes: dict[str, Any]) -> bool:
    """Records an outcome if this sender still holds the delivery."""
    result = await _coll().update_one(
        {"_id": delivery_id, "status": DeliveryStatus.SENDING.value, "lease_token": token},
        {
            "$set": {
                **changes,
                "lease_owner": None,
                "lease_token": None,
                "lease_expires_at": None,
                "updated_at": utcnow(),
            }
        },
    )
    return bool(result.modified_count)


async def get(delivery_id: PydanticObjectId) -> ReportDelivery | None:
    return await ReportDelivery.get(delivery_id)


async def for_job(job_id: PydanticObjectId) -> list[ReportDelivery]:
    return await ReportDelivery.find({"job_id": job_id}).sort("created_at").to_list()


async def for_jobs(job_ids: Sequence[PydanticObjectId]) -> list[ReportDelivery]:
    """A run history page's deliveries in one query."""
    return await ReportDelivery.find({"job_id": {"$in": list(job_ids)}}).to_list()


async def resend(
    delivery_id: PydanticObjectId, *, max_attempts: int, now: datetime | None = None
) -> bool:
    """A failed or cancelled delivery goes back to pending with a fresh attempt budget (same id:
    a receiver that got it already drops it)."""
    now = now or utcnow()
    result = await _coll().update_one(
        {
            "_id": delivery_id,
            "status": {"$in": [DeliveryStatus.FAILED.value, DeliveryStatus.CANCELLED.value]},
        },
        {
            "$set": {
                "status": DeliveryStatus.PENDING.value,
                "next_attempt_at": now,
                "max_attempts": max_attempts,
                "attempts": 0,
                "failed_at": None,
                "updated_at": now,
            }
        },
    )
    return bool(result.modified_count)


# What a run of a schedule delivers: its report, or the notice that it found no rows. The
# notices about the schedule itself (a run failed for good, the schedule paused itself, an
# endpoint was disabled) are not: they say why it stopped and still go.
RUN_RESULT: dict[str, Any] = {
    "$or": [
        {"kind": DeliveryKind.REPORT.value},
        {"content.job_status": JobStatus.COMPLETED.value},
    ]
}
SCHEDULE_STOPPED = "schedule stopped"


def is_run_result(delivery: ReportDelivery) -> bool:
    """`RUN_RESULT` for one delivery in hand."""
    return (
        delivery.kind == DeliveryKind.REPORT
        or delivery.content.job_status == JobStatus.COMPLETED.value
    )


async def revoke_links_for_schedule(schedule_id: PydanticObjectId) -> int:
    """Schedule paused or deleted: its delivery links stop working (links already sent
    included) and its unsent run results are cancelled. A sender holding one right now sees
    the revocation before it connects (`link_revoked`) and cancels it too."""
    now = utcnow()
    await _coll().update_many(
        {"schedule_id": schedule_id, "status": DeliveryStatus.PENDING.value, **RUN_RESULT},
        {
            "$set": {
                "status": DeliveryStatus.CANCELLED.value,
                "last_error": SCHEDULE_STOPPED,
                "updated_at": now,
            }
        },
    )
    result = await _coll().update_many(
        {"schedule_id": schedule_id, "link_revoked_at": None},
        {"$set": {"link_revoked_at": now, "updated_at": now}},
    )
    return int(result.modified_count)


async def link_revoked(delivery_id: PydanticObjectId) -> bool:
    """Read again right before a message leaves: was its schedule stopped meanwhile?"""
    doc = await _coll().find_one({"_id": delivery_id}, {"link_revoked_at": 1})
    return bool(doc and doc.get("link_revoked_at"))


async def cancel_pending_for_endpoint(endpoint_id: PydanticObjectId, reason: str) -> int:
    result = await _coll().update_many(
        {"recipient.endpoint_id": endpoint_id, "status": DeliveryStatus.PENDING.value},
        {"$set": {"status": DeliveryStatus.CANCELLED.value, "last_error": reason}},
    )
    return int(result.modified_count)


# Webhook endpoints -------------------------------------------------------------------------


async def get_endpoint(endpoint_id: PydanticObjectId) -> WebhookEndpoint | None:
    return await WebhookEndpoint.get(endpoint_id)


async def delete_endpoint(endpoint_id: PydanticObjectId) -> None:
    await WebhookEndpoint.get_pymongo_collection().delete_one({"_id": endpoint_id})


async def create_endpoint(
    *,
    owner_user_id: str,
    url: str,
    secret: str | None,
    description: str | None = None,
    kind: EndpointKind = EndpointKind.WEBHOOK,
) -> WebhookEndpoint:
    """A new endpoint; `secret` signs a webhook's calls (None for Slack and Teams)."""
    endpoint = WebhookEndpoint(
        owner_user_id=owner_user_id,
        url=url,
        kind=kind,
        description=description,
        secrets=[EndpointSecret(secret=secret, created_at=utcnow())] if secret else [],
    )
    await endpoint.insert()
    return endpoint


async def add_secret(
    endpoint_id: PydanticObjectId, secret: str, *, overlap: timedelta, now: datetime
) -> bool:
    """The new secret signs from now on; the current ones keep signing for `overlap`, then
    stop (expired secrets are dropped at the same time)."""
    endpoint = await WebhookEndpoint.get(endpoint_id)
    if endpoint is None:
        return False
    kept = []
    for old in endpoint.live_secrets(now):
        if old.expires_at is None or old.expires_at > now + overlap:
            old.expires_at = now + overlap
        kept.append(old.model_dump())
    kept.append(EndpointSecret(secret=secret, created_at=now).model_dump())
    result = await WebhookEndpoint.get_pymongo_collection().update_one(
        {"_id": endpoint_id}, {"$set": {"secrets": kept, "updated_at": now}}
    )
    return bool(result.matched_count)


async def disable_endpoint(endpoint_id: PydanticObjectId, reason: str) -> bool:
    """Gone: the endpoint stops receiving; its waiting deliveries are cancelled."""
    now = utcnow()
    result = await WebhookEndpoint.get_pymongo_collection().update_one(
        {"_id": endpoint_id, "disabled_at": None},
        {"$set": {"disabled_at": now, "disabled_reason": reason, "updated_at": now}},
    )
    await cancel_pending_for_endpoint(endpoint_id, reason)
    return bool(result.modified_count)
