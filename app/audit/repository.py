"""Reading the audit trail: filters and keyset pages in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.audit.models import AuditEvent, AuditOutcome
from app.common.pagination import Listed, PageRequest, paginate


@dataclass(frozen=True)
class AuditFilters:
    user_id: str | None = None
    action: str | None = None
    object_id: str | None = None
    object_type: str | None = None
    outcome: AuditOutcome | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None

    def query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.user_id:
            query["actor.user_id"] = self.user_id
        if self.action:
            query["action"] = self.action
        if self.object_id:
            query["object_id"] = self.object_id
        if self.object_type:
            query["object_type"] = self.object_type
        if self.outcome:
            query["outcome"] = self.outcome.value
        window: dict[str, Any] = {}
        if self.occurred_from:
            window["$gte"] = self.occurred_from
        if self.occurred_to:
            window["$lt"] = self.occurred_to
        if window:
            query["created_at"] = window
        return query


async def add(event: AuditEvent) -> None:
    """Appends an event (events are never updated)."""
    await event.insert()


async def find_events(filters: AuditFilters, page: PageRequest) -> Listed[AuditEvent]:
    return await paginate(AuditEvent, filters.query(), page)
