"""All queries on report schedules (and the jobs they created)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument

from app.common.pagination import Listed, PageRequest, paginate
from app.common.time import utcnow
from app.reports.jobs.models import ReportJob
from app.reports.schedules.models import ReportSchedule, ScheduleStatus
from app.security import Principal


def visible_filter(principal: Principal) -> dict[str, Any]:
    """Schedules are private: the owner's own, and all of them for admins."""
    return {} if principal.is_admin else {"owner.user_id": principal.user_id}


async def get(schedule_id: PydanticObjectId) -> ReportSchedule | None:
    return await ReportSchedule.get(schedule_id)


async def insert(schedule: ReportSchedule) -> ReportSchedule:
    return await schedule.insert()


async def delete(schedule_id: PydanticObjectId) -> None:
    await ReportSchedule.get_pymongo_collection().delete_one({"_id": schedule_id})


async def delivers(schedule_id: PydanticObjectId, session: Any = None) -> bool:
    """Whether the schedule's runs may still deliver: not once it is paused or deleted (an
    ended schedule's last run still does). Read inside a run's commit transaction."""
    raw = await ReportSchedule.get_pymongo_collection().find_one(
        {"_id": schedule_id}, {"status": 1}, session=session
    )
    return raw is not None and raw.get("status") != ScheduleStatus.PAUSED.value


async def live_schedules_using_template(template_id: PydanticObjectId) -> list[ReportSchedule]:
    return await ReportSchedule.find(
        {"template_id": template_id, "status": {"$ne": ScheduleStatus.ENDED.value}}
    ).to_list()


async def schedules_calling(endpoint_id: PydanticObjectId) -> list[ReportSchedule]:
    """Every schedule whose runs call the webhook endpoint (ended ones too: they may be
    resumed)."""
    return await ReportSchedule.find({"webhook_endpoint_ids": endpoint_id}).to_list()


def list_filter(
    principal: Principal,
    *,
    status: str | None,
    report_type: str | None,
    template_id: PydanticObjectId | None,
    owner: str | None,
    q: str | None,
) -> dict[str, Any]:
    query: dict[str, Any] = dict(visible_filter(principal))
    if status:
        query["status"] = status
    if report_type:
        query["report_type"] = report_type
    if template_id:
        query["template_id"] = template_id
    if owner:
        query = {"$and": [query, {"owner.user_id": owner}]} if query else {"owner.user_id": owner}
    if q:
        query = {"$and": [query, {"name": {"$regex": re.escape(q), "$options": "i"}}]}
    return query


async def find_page(query: dict[str, Any], page: PageRequest) -> Listed[ReportSchedule]:
    return await paginate(ReportSchedule, query, page)


async def find_runs(
    schedule_id: PydanticObjectId, *, status: str | None, page: PageRequest
) -> Listed[ReportJob]:
    query: dict[str, Any] = {"schedule_id": schedule_id}
    if status:
        query["status"] = status
    return await paginate(ReportJob, query, page)


async def job_for_slot(schedule_id: PydanticObjectId, slot: datetime) -> ReportJob | None:
    return await ReportJob.find_one({"schedule_id": schedule_id, "scheduled_for": slot})


async def set_fields(
    schedule_id: PydanticObjectId, changes: dict[str, Any], *, where: dict[str, Any] | None = None
) -> ReportSchedule | None:
    """`$set` on one schedule (optionally only if it still matches `where`); the new state."""
    raw = await ReportSchedule.get_pymongo_collection().find_one_and_update(
        {"_id": schedule_id, **(where or {})},
        {"$set": {**changes, "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER,
    )
    return ReportSchedule.model_validate(raw) if raw else None


async def due(
    now: datetime, limit: int, after: tuple[datetime, PydanticObjectId] | None = None
) -> list[ReportSchedule]:
    """The active schedules due at `now`, earliest first (ties by id); `after`: only those
    past that (next_run_at, id), the last of the previous batch."""
    query: dict[str, Any] = {"status": ScheduleStatus.ACTIVE.value, "next_run_at": {"$lte": now}}
    if after is not None:
        at, last = after
        query["$or"] = [{"next_run_at": {"$gt": at}}, {"next_run_at": at, "_id": {"$gt": last}}]
    return await ReportSchedule.find(query).sort("+next_run_at", "+_id").limit(limit).to_list()


async def advance(
    schedule_id: PydanticObjectId,
    expected_next_run_at: datetime,
    changes: dict[str, Any],
    inc: dict[str, int] | None = None,
) -> bool:
    """Moves a schedule on only if nobody else did (compare-and-set on next_run_at)."""
    update: dict[str, Any] = {"$set": {**changes, "updated_at": utcnow()}}
    if inc:
        update["$inc"] = inc
    result = await ReportSchedule.get_pymongo_collection().update_one(
        {
            "_id": schedule_id,
            "status": ScheduleStatus.ACTIVE.value,
            "next_run_at": expected_next_run_at,
        },
        update,
    )
    return result.modified_count == 1


async def record_outcome(
    schedule_id: PydanticObjectId, job_id: PydanticObjectId, *, failed: bool
) -> ReportSchedule | None:
    """Counts a finished job once (a repeated report of the same job changes nothing)."""
    update: dict[str, Any] = {"$set": {"last_outcome_job_id": job_id, "updated_at": utcnow()}}
    if failed:
        update["$inc"] = {"consecutive_failures": 1}
    else:
        update["$set"]["consecutive_failures"] = 0
    raw = await ReportSchedule.get_pymongo_collection().find_one_and_update(
        {"_id": schedule_id, "last_outcome_job_id": {"$ne": job_id}},
        update,
        return_document=ReturnDocument.AFTER,
    )
    return ReportSchedule.model_validate(raw) if raw else None
