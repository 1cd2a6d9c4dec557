"""AuditEvent: one action by one caller on one object, allowed or denied."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from app.common.pagination import Sorting, created_at, sort_indexes
from app.common.time import utcnow


class AuditAction(StrEnum):
    JOB_CREATED = "job.created"
    JOB_REPLAYED = "job.replayed"  # an Idempotency-Key answered with an earlier job
    JOB_CANCELLED = "job.cancelled"
    JOB_RETRIED = "job.retried"
    JOB_DOWNLOADED = "job.downloaded"
    JOB_ROWS_READ = "job.rows-read"
    REPORT_PREVIEWED = "report.previewed"
    DELIVERY_LINK_USED = "delivery-link.used"
    DELIVERY_RESENT = "delivery.resent"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_ROTATED = "webhook.rotated"
    WEBHOOK_DELETED = "webhook.deleted"
    TEMPLATE_CREATED = "template.created"
    TEMPLATE_UPDATED = "template.updated"
    TEMPLATE_DELETED = "template.deleted"
    TEMPLATE_DUPLICATED = "template.duplicated"
    TEMPLATE_RUN = "template.run"
    SCHEDULE_CREATED = "schedule.created"
    SCHEDULE_UPDATED = "schedule.updated"
    SCHEDULE_DELETED = "schedule.deleted"
    SCHEDULE_PAUSED = "schedule.paused"
    SCHEDULE_RESUMED = "schedule.resumed"
    SCHEDULE_RUN_NOW = "schedule.run-now"
    SCHEDULE_TESTED = "schedule.tested"  # a test send to the caller only
    SCHEDULE_ALERT_FIRED = "schedule.alert-fired"  # a run's alert conditions became true
    SCHEDULE_UNSUBSCRIBED = "schedule.unsubscribed"  # a recipient left through their link
    LOOKUP_CHANGED = "lookup.changed"
    AUDIT_READ = "audit.read"
    # Another user's object asked for and answered 404 as if it did not exist (app/audit/probes.py).
    JOB_PROBE_DENIED = "job.probe-denied"
    TEMPLATE_PROBE_DENIED = "template.probe-denied"
    SCHEDULE_PROBE_DENIED = "schedule.probe-denied"


class AuditOutcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"


class Actor(BaseModel):
    """The caller as its token named it (`user_id` is the token subject)."""

    user_id: str
    subject: str
    name: str | None = None
    role: str | None = None
    roles: list[str] = Field(default_factory=list)
    department_ids: list[str] = Field(default_factory=list)


AUDIT_SORTS = Sorting((created_at("the event"),), default="-createdAt")


class AuditEvent(Document):
    """Append-only: written once, never updated; removed by the TTL index on `expires_at`."""

    created_at: datetime = Field(default_factory=utcnow)
    action: str
    outcome: AuditOutcome = AuditOutcome.ALLOWED
    reason: str | None = None
    actor: Actor | None = None
    object_type: str | None = None
    object_id: str | None = None
    scope: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    client_address: str | None = None
    method: str | None = None
    path: str | None = None
    expires_at: datetime

    class Settings:
        name = "audit_events"
        indexes = [
            # The trail in time order, whole or by actor, action or object.
            *sort_indexes(AUDIT_SORTS, (), ("actor.user_id",), ("action",), ("object_id",)),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        ]
