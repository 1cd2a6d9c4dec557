"""Binds the request to the audit trail (with its checked client address) and records every
denial (403) where it happens: any service may refuse, and the problem it raises names the
reason; the route names the action. A 404 answered for another user's object is recorded as a
denied probe once it is sent (app/audit/probes.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.context import (
    HIDDEN_OBJECT,
    RequestInfo,
    current_request,
    request_info,
    trusted_networks,
)
from app.audit.models import AuditAction, AuditOutcome
from app.audit.probes import record_probe
from app.audit.service import build_event, write
from app.config import Settings

log = structlog.get_logger(__name__)

# The action a refused route was attempting (route names are the operation ids).
ROUTE_ACTIONS: dict[str, AuditAction] = {
    "jobs_create": AuditAction.JOB_CREATED,
    "jobs_cancel": AuditAction.JOB_CANCELLED,
    "jobs_retry": AuditAction.JOB_RETRIED,
    "jobs_download": AuditAction.JOB_DOWNLOADED,
    "jobs_rows": AuditAction.JOB_ROWS_READ,
    "reports_preview": AuditAction.REPORT_PREVIEWED,
    "templates_create": AuditAction.TEMPLATE_CREATED,
    "templates_update": AuditAction.TEMPLATE_UPDATED,
    "templates_delete": AuditAction.TEMPLATE_DELETED,
    "templates_duplicate": AuditAction.TEMPLATE_DUPLICATED,
    "templates_run": AuditAction.TEMPLATE_RUN,
    "schedules_create": AuditAction.SCHEDULE_CREATED,
    "schedules_update": AuditAction.SCHEDULE_UPDATED,
    "schedules_delete": AuditAction.SCHEDULE_DELETED,
    "schedules_pause": AuditAction.SCHEDULE_PAUSED,
    "schedules_resume": AuditAction.SCHEDULE_RESUMED,
    "schedules_run_now": AuditAction.SCHEDULE_RUN_NOW,
    "lookups_update": AuditAction.LOOKUP_CHANGED,
    "audit_list": AuditAction.AUDIT_READ,
    "deliveries_download": AuditAction.DELIVERY_LINK_USED,
    "deliveries_resend": AuditAction.DELIVERY_RESENT,
    "webhooks_create": AuditAction.WEBHOOK_CREATED,
    "webhooks_rotate": AuditAction.WEBHOOK_ROTATED,
    "webhooks_delete": AuditAction.WEBHOOK_DELETED,
}

DENIED_STATUS = 403
NOT_FOUND_STATUS = 404
PROBE_RECORD_SECONDS = 5.0
_MAX_DENIAL_BODY = 64 * 1024


class AuditMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.networks = trusted_networks(settings.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = request_info(scope, self.settings, self.networks)
        client = scope.get("client")
        if info.client_address and client and info.client_address != client[0]:
            # The address a trusted proxy forwarded: what uvicorn's access log reports too.
            scope["client"] = (info.client_address, 0)
        token = current_request.set(info)
        held: list[Message] = []  # a 403 is held back until its denial is recorded
        statuses: list[int] = []

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            if message["type"] == "http.response.start" and message["status"] == DENIED_STATUS:
                held.append(message)
                return
            if held:
                held.append(message)
                if not message.get("more_body", False):
                    await self._record_denial(scope, held)
                    for m in held:
                        await send(m)
                    held.clear()
                return
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
            if statuses == [NOT_FOUND_STATUS] and HIDDEN_OBJECT in info.state:
                await self._record_probe(scope, info)
        finally:
            current_request.reset(token)

    async def _record_probe(self, scope: Scope, info: RequestInfo) -> None:
        """After the 404 is sent (so it is not slower for an object that exists): best effort,
        bounded in time; a probe that cannot be recorded is logged."""
        name = getattr(scope.get("route"), "name", None) or "unmatched"
        try:
            async with asyncio.timeout(PROBE_RECORD_SECONDS):
                await record_probe(info, name)
        except Exception as exc:
            log.warning("audit_probe_not_recorded", operation=name, error=str(exc)[:200])

    async def _record_denial(self, scope: Scope, messages: list[Message]) -> None:
        body = b"".join(m.get("body", b"") for m in messages[1:])[:_MAX_DENIAL_BODY]
        try:
            problem: dict[str, Any] = json.loads(body) if body else {}
        except ValueError:
            problem = {}
        route = scope.get("route")
        name = getattr(route, "name", None) or "unmatched"
        path_params: dict[str, Any] = scope.get("path_params") or {}
        action = ROUTE_ACTIONS.get(name)
        event = build_event(
            action or name,
            None,
            object_type=action.value.split(".")[0] if action else None,
            # A delivery link's token is a credential: never recorded (see app/common/redaction.py).
            object_id=None
            if "token" in path_params
            else "/".join(str(v) for v in path_params.values()) or None,
            outcome=AuditOutcome.DENIED,
            reason=str(problem.get("detail") or problem.get("title") or "forbidden"),
            details={"code": problem.get("code", "permission-denied")},
        )
        try:
            await write(event)
        except Exception:  # the caller is refused either way; the failure is logged by write
            log.warning("audit_denial_not_recorded", action=event.action)
