"""Builders for scheduler tests: an owner and a schedule due at a given time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.platform.models import User
from app.reports.jobs.models import Requester
from app.reports.schedules.models import ReportSchedule
from app.reports.schedules.recurrence import Frequency
from tests import factories

PARAMS = {"dateRange": {"preset": "yesterday"}}


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def owner(roles: list[str] | None = None, **kw: Any) -> User:
    dept = await factories.department()
    return await factories.user("Olivia Owner", dept=dept, roles=roles or ["manager"], **kw)


def requester(user: User) -> Requester:
    return Requester(
        user_id=str(user.id),
        name=user.name,
        email=user.email,
        roles=list(user.roles),
        department_ids=[str(user.department_id)] if user.department_id else [],
    )


async def schedule_for(
    user: User, next_run_at: datetime, *, time_of_day: str = "09:00", **kw: Any
) -> ReportSchedule:
    doc = ReportSchedule(
        name=kw.pop("name", "Daily progress"),
        report_type="learner-progress",
        format="csv",
        parameters=kw.pop("parameters", PARAMS),
        frequency=kw.pop("frequency", Frequency.DAILY),
        time_of_day=time_of_day,
        timezone=kw.pop("timezone", "UTC"),
        owner=requester(user),
        next_run_at=next_run_at,
        **kw,
    )
    return await doc.insert()
