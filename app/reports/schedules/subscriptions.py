"""What one person receives: every schedule that lists them (by platform user id or by their
address), on which channel and when next, and the schedules they left (admins only)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from pydantic import Field

from app.common.schemas import ApiModel
from app.errors import Forbidden, NotFound
from app.platform.models import User
from app.platform.repository import user_by_id
from app.reports.deliveries.addresses import AddressRefused, normalize_address
from app.reports.schedules.models import ReportSchedule, ScheduleStatus
from app.security import Principal

_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
MAX_LISTED = 1000


class PersonOut(ApiModel):
    user_id: str | None = Field(description="The platform user, when the person is one")
    address: str | None = None
    name: str | None = None
    active: bool | None = Field(
        description="Whether the platform user is active (an inactive one is skipped at every "
        "run); null for an address that is no platform user's"
    )


class SubscriptionOut(ApiModel):
    schedule_id: str
    schedule_name: str
    report_type: str
    channel: str = Field(description="How they receive it: `email`")
    listed_as: str = Field(description="The entry on the schedule: a user id or an address")
    audience: str = Field(description="`owner`: the owner's data; `recipient`: their own scope")
    status: ScheduleStatus
    next_run_at: datetime | None = Field(description="UTC; null while paused or once ended")
    owner_user_id: str
    owner_name: str


class LeftOut(ApiModel):
    schedule_id: str
    schedule_name: str
    unsubscribed_at: datetime


class SubscriptionsOut(ApiModel):
    person: PersonOut
    items: list[SubscriptionOut] = Field(
        description=f"The schedules that send to them, by name (at most {MAX_LISTED})"
    )
    unsubscribed: list[LeftOut] = Field(
        description="Schedules they left with an e-mail's unsubscribe link"
    )


async def _person(who: str) -> tuple[PersonOut, list[str], list[str]]:
    """The person, the user ids and the addresses (lower case) that name them."""
    if _OBJECT_ID.match(who):
        user = await user_by_id(who)
        if user is None:
            raise NotFound(f"No platform user with id {who!r}.", code="recipient-not-found")
        person = PersonOut(
            user_id=str(user.id), address=user.email, name=user.name, active=user.status == "active"
        )
        return person, [str(user.id)], [user.email.lower()]
    try:
        address = normalize_address(who)
    except AddressRefused:
        raise NotFound(
            f"{who!r} is neither a platform user id nor an e-mail address.",
            code="recipient-not-found",
        ) from None
    pattern = f"^{re.escape(address)}$"
    user = await User.find_one({"email": {"$regex": pattern, "$options": "i"}})
    if user is None:
        return (
            PersonOut(user_id=None, address=address, name=None, active=None),
            [],
            [address.lower()],
        )
    person = PersonOut(
        user_id=str(user.id), address=user.email, name=user.name, active=user.status == "active"
    )
    return person, [str(user.id)], list({address.lower(), user.email.lower()})


def _regexes(addresses: list[str]) -> list[dict[str, Any]]:
    return [{"$regex": f"^{re.escape(a)}$", "$options": "i"} for a in addresses]


async def subscriptions_of(principal: Principal, who: str) -> SubscriptionsOut:
    if not principal.is_admin:
        raise Forbidden(
            "Only administrators may see what another person receives.", code="admin-required"
        )
    person, user_ids, addresses = await _person(who)
    listed: list[dict[str, Any]] = [{"delivery_recipients.user_id": {"$in": user_ids}}]
    listed += [{"delivery_recipients.address": r} for r in _regexes(addresses)]
    left: list[dict[str, Any]] = [{"unsubscribed.user_id": {"$in": user_ids}}]
    left += [{"unsubscribed.address": r} for r in _regexes(addresses)]
    found = (
        await ReportSchedule.find({"$or": listed + left})
        .sort("+name", "+_id")
        .limit(MAX_LISTED)
        .to_list()
    )
    items: list[SubscriptionOut] = []
    gone: list[LeftOut] = []
    for schedule in found:
        assert schedule.id is not None
        for recipient in schedule.delivery_recipients:
            if recipient.user_id in user_ids or (recipient.address or "").lower() in addresses:
                items.append(_item(schedule, schedule.id, recipient.user_id or recipient.address))
                break
        for entry in schedule.unsubscribed:
            if entry.user_id in user_ids or (entry.address or "").lower() in addresses:
                gone.append(
                    LeftOut(
                        schedule_id=str(schedule.id),
                        schedule_name=schedule.name,
                        unsubscribed_at=entry.at,
                    )
                )
                break
    return SubscriptionsOut(person=person, items=items, unsubscribed=gone)


def _item(
    schedule: ReportSchedule, schedule_id: PydanticObjectId, entry: str | None
) -> SubscriptionOut:
    return SubscriptionOut(
        schedule_id=str(schedule_id),
        schedule_name=schedule.name,
        report_type=schedule.report_type,
        channel="email",
        listed_as=entry or "",
        audience=schedule.audience.value,
        status=schedule.status,
        next_run_at=schedule.next_run_at if schedule.status == ScheduleStatus.ACTIVE else None,
        owner_user_id=schedule.owner.user_id,
        owner_name=schedule.owner.name,
    )
