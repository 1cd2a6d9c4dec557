"""Recipients leaving a schedule (the one-click unsubscribe link of its e-mails) and the owner
inviting them back.

Unsubscribing takes the recipient off the schedule's list and records them in `unsubscribed`
(one write, conditional on their not being recorded yet: a second click changes nothing and is
not audited twice). A schedule update that lists an unsubscribed person again is refused with a
422 naming them unless the same request names them in `reinvite`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId

from app.audit import AuditAction, record
from app.common.time import utcnow
from app.config import Settings
from app.errors import FieldError, NotFound, ValidationFailed
from app.reports.deliveries.models import DeliveryStatus, Recipient, ReportDelivery
from app.reports.deliveries.unsubscribe_links import (
    UnsubscribeClaims,
    UnsubscribeLinkError,
    verify_unsubscribe_token,
)
from app.reports.schedules.models import ReportSchedule, Unsubscribed

NOT_A_LINK = "This is not an unsubscribe link of this service (mistyped, cut off or altered)."


@dataclass(frozen=True)
class Unsubscription:
    schedule_name: str | None  # None: the schedule no longer exists
    address: str | None
    newly: bool  # False: they had unsubscribed already (or the schedule is gone)


def claims_of(settings: Settings, token: str) -> tuple[PydanticObjectId, str]:
    """The schedule and recipient key a token names; a 404 `unsubscribe-link-invalid` when it
    is not one we signed."""
    claims = token_claims(settings, token)
    return PydanticObjectId(claims.schedule_id), claims.recipient


def token_claims(settings: Settings, token: str) -> UnsubscribeClaims:
    """What a token names, checked; a 404 `unsubscribe-link-invalid` when we did not sign it."""
    try:
        claims = verify_unsubscribe_token(settings, token)
    except UnsubscribeLinkError:
        raise NotFound(NOT_A_LINK, code="unsubscribe-link-invalid") from None
    if not ObjectId.is_valid(claims.schedule_id) or ":" not in claims.recipient:
        raise NotFound(NOT_A_LINK, code="unsubscribe-link-invalid")
    return claims


def _match(key: str) -> tuple[dict[str, Any], str]:
    """How the schedule's lists hold the recipient a key names: the `delivery_recipients`
    entry and the `recipients` value."""
    kind, _, value = key.partition(":")
    if kind == "user":
        return {"user_id": value}, value
    return {"address": value, "user_id": None}, value


async def unsubscribe(settings: Settings, token: str) -> Unsubscription:
    """Takes the token's recipient off its schedule (idempotent, audited once)."""
    schedule_id, key = claims_of(settings, token)
    schedule = await ReportSchedule.get(schedule_id)
    if schedule is None:
        return Unsubscription(None, None, newly=False)
    listed = next((r for r in schedule.delivery_recipients if r.key() == key), None)
    kind, _, value = key.partition(":")
    entry = Unsubscribed(
        key=key,
        user_id=value if kind == "user" else None,
        address=listed.address if listed else (value if kind == "email" else None),
        at=utcnow(),
    )
    in_list, raw = _match(key)
    result = await ReportSchedule.get_pymongo_collection().update_one(
        {"_id": schedule_id, "unsubscribed.key": {"$ne": key}},
        {
            "$pull": {"delivery_recipients": in_list, "recipients": raw},
            "$push": {"unsubscribed": entry.model_dump()},
            "$set": {"updated_at": entry.at},
        },
    )
    newly = result.modified_count == 1
    if newly:
        await _cancel_waiting(schedule_id, in_list)
        await record(
            AuditAction.SCHEDULE_UNSUBSCRIBED,
            None,
            object_id=schedule_id,
            details={"recipient": entry.address or key, "wasListed": listed is not None},
        )
    return Unsubscription(schedule.name, entry.address, newly=newly)


async def looked_up(settings: Settings, token: str) -> Unsubscription:
    """What the token's button would do, changing nothing (the GET's confirmation page)."""
    schedule_id, key = claims_of(settings, token)
    schedule = await ReportSchedule.get(schedule_id)
    if schedule is None:
        return Unsubscription(None, None, newly=False)
    listed = next((r for r in schedule.delivery_recipients if r.key() == key), None)
    left = next((u for u in schedule.unsubscribed if u.key == key), None)
    kind, _, value = key.partition(":")
    address = (listed.address if listed else None) or (left.address if left else None)
    return Unsubscription(
        schedule.name, address or (value if kind == "email" else None), newly=False
    )


async def _cancel_waiting(schedule_id: PydanticObjectId, recipient: dict[str, Any]) -> None:
    """The schedule's messages to them still waiting in the outbox (a retry, a run not sent
    yet) are cancelled; one being sent right now (leased) goes out."""
    await ReportDelivery.get_pymongo_collection().update_many(
        {
            "schedule_id": schedule_id,
            "status": DeliveryStatus.PENDING.value,
            **{f"recipient.{k}": v for k, v in recipient.items()},
        },
        {
            "$set": {
                "status": DeliveryStatus.CANCELLED.value,
                "last_error": "the recipient unsubscribed from the schedule",
                "updated_at": utcnow(),
            }
        },
    )


def _keys_of(recipient: Recipient) -> set[str]:
    keys = {recipient.key()}
    if recipient.address:
        keys.add(f"email:{recipient.address.lower()}")
    return keys


def _entry_keys(entry: Unsubscribed) -> set[str]:
    keys = {entry.key}
    if entry.address:
        keys.add(f"email:{entry.address.lower()}")
    if entry.user_id:
        keys.add(f"user:{entry.user_id}")
    return keys


def check_relisting(
    current: ReportSchedule,
    recipients: Sequence[Recipient],
    reinvite: Sequence[str] | None,
    field: str = "body.recipients",
) -> list[dict[str, Any]] | None:
    """Refuses (one 422 naming each) recipients who unsubscribed and are not in `reinvite`;
    returns the schedule's new `unsubscribed` list when someone is re-invited (else None)."""
    if not current.unsubscribed:
        return None
    invited = {v.strip().lower() for v in reinvite or ()}
    errors: list[FieldError] = []
    welcomed: set[str] = set()
    for index, recipient in enumerate(recipients):
        for entry in current.unsubscribed:
            if not _keys_of(recipient) & _entry_keys(entry):
                continue
            names = {(recipient.user_id or "").lower(), (recipient.address or "").lower()}
            if invited & (names - {""}):
                welcomed.add(entry.key)
                continue
            errors.append(
                FieldError(
                    field=f"{field}.{index}",
                    message=f"{recipient.address or recipient.user_id!r} unsubscribed from this "
                    f"schedule on {entry.at:%Y-%m-%d}; to add them again, name them in "
                    "`reinvite` as well",
                    type="unsubscribed",
                )
            )
    if errors:
        raise ValidationFailed.of(errors)
    if not welcomed:
        return None
    return [e.model_dump() for e in current.unsubscribed if e.key not in welcomed]
