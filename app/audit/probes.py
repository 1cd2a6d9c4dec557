"""Denied probes: another user's job, template or schedule is answered 404, as if it did not
exist (docs/security.md), so a caller walking ids learns nothing from the answer; the trail
still shows the attempt. A service about to answer that 404 for an object that exists calls
`note_hidden` (app/audit/context.py); once the 404 has been sent, `AuditMiddleware` calls
`record_probe`, which writes `<type>.probe-denied` with the outcome `denied`.

At most `AUDIT_PROBE_LIMIT` probes per caller per `AUDIT_PROBE_WINDOW_SECONDS` are recorded, so
a caller cannot flood the trail. The count is one MongoDB document per (caller, window) in
`audit_probe_windows`, incremented atomically (every API process shares the cap; nothing is
held in memory) and removed by a TTL index once its window is over. The event at the cap says
so; the probes after it in the same window are counted, not recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.audit import repository
from app.audit.context import HIDDEN_OBJECT, RequestInfo
from app.audit.models import AuditAction, AuditEvent, AuditOutcome
from app.audit.service import build_event
from app.common.time import utcnow
from app.security import Principal

COLLECTION = "audit_probe_windows"

PROBE_ACTIONS: dict[str, AuditAction] = {
    "job": AuditAction.JOB_PROBE_DENIED,
    "template": AuditAction.TEMPLATE_PROBE_DENIED,
    "schedule": AuditAction.SCHEDULE_PROBE_DENIED,
}

_indexed: set[str] = set()  # databases whose window collection has its TTL index (a cache)


def _windows() -> Any:
    return AuditEvent.get_pymongo_collection().database[COLLECTION]


async def _count(user_id: str, window: int, ends: datetime) -> int:
    """This caller's probes in this window, the current one included."""
    windows = _windows()
    if windows.database.name not in _indexed:
        await windows.create_index("expires_at", expireAfterSeconds=0)
        _indexed.add(windows.database.name)
    query = {"_id": f"{window}:{user_id}"}
    update = {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": ends}}
    try:
        doc = await windows.find_one_and_update(
            query, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:  # the window's first two probes at once: the other inserted it
        doc = await windows.find_one_and_update(
            query, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    return int(doc["count"])


async def record_probe(info: RequestInfo, operation: str) -> AuditEvent | None:
    """Records the probe the request's 404 was answered for (None when it is over the cap or
    the request named no hidden object)."""
    hidden = info.state.get(HIDDEN_OBJECT)
    principal = info.state.get("principal")
    if not hidden or not isinstance(principal, Principal):
        return None
    object_type, object_id = hidden
    action = PROBE_ACTIONS.get(object_type)
    if action is None:
        return None
    settings = info.settings
    seconds = settings.audit_probe_window_seconds
    window = int(utcnow().timestamp()) // seconds
    ends = datetime.fromtimestamp((window + 1) * seconds, UTC)
    count = await _count(principal.user_id, window, ends)
    limit = settings.audit_probe_limit
    if count > limit:
        return None
    details: dict[str, Any] = {"operation": operation, "probe": count, "limit": limit}
    if count == limit:
        details["notRecordedUntil"] = ends.isoformat().replace("+00:00", "Z")
    event = build_event(
        action,
        principal,
        object_type=object_type,
        object_id=object_id,
        outcome=AuditOutcome.DENIED,
        reason=(
            f"Another user's {object_type}: answered 404 as if it did not exist."
            + (
                f" Probe {limit} of {limit} in this window: further probes by this caller are "
                "counted, not recorded, until the window ends."
                if count == limit
                else ""
            )
        ),
        details=details,
    )
    await repository.add(event)
    return event
