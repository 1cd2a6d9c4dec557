"""The lists of deliveries and webhook endpoints: whose the caller may see, filtered and paged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId

from app.common.pagination import Listed, PageRequest, paginate
from app.errors import ValidationFailed
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryStatus,
    ReportDelivery,
    WebhookEndpoint,
)


@dataclass(frozen=True)
class DeliveryFilters:
    job_id: str | None = None
    schedule_id: str | None = None
    status: DeliveryStatus | None = None
    channel: DeliveryChannel | None = None


def _query_id(value: str, field: str) -> PydanticObjectId:
    if not ObjectId.is_valid(value):
        raise ValidationFailed.one(field, "not a valid id", type="id-invalid")
    return PydanticObjectId(value)


async def list_deliveries(
    filters: DeliveryFilters, page: PageRequest, *, user_id: str, is_admin: bool
) -> Listed[ReportDelivery]:
    """The deliveries of the caller's jobs and schedules (everyone's for admins)."""
    query: dict[str, Any] = {} if is_admin else {"owner_user_id": user_id}
    if filters.job_id is not None:
        query["job_id"] = _query_id(filters.job_id, "query.jobId")
    if filters.schedule_id is not None:
        query["schedule_id"] = _query_id(filters.schedule_id, "query.scheduleId")
    if filters.status is not None:
        query["status"] = filters.status.value
    if filters.channel is not None:
        query["channel"] = filters.channel.value
    return await paginate(ReportDelivery, query, page)


async def list_webhooks(user_id: str, page: PageRequest) -> Listed[WebhookEndpoint]:
    """The caller's own webhook endpoints (also for admins: an endpoint's secret is its
    owner's)."""
    return await paginate(WebhookEndpoint, {"owner_user_id": user_id}, page)
