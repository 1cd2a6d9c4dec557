"""Binds the request to the audit trail and records every denial (403) where it happens: any
service may refuse, and the problem it raises names the reason; the route names the action."""

from __future__ import annotations

import json
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.context import current_request, request_info, trusted_networks
from app.audit.models import AuditAction, AuditOutcome
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
}

DENIED_STATUS = 403
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
        token = current_request.set(request_info(scope, self.settings, self.networks))
        held: list[Message] = []  # a 403 is held back until its denial is recorded

        async def send_wrapper(message: Message) -> None:
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
        finally:
            current_request.reset(token)

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
            details={"code": problem.get("code", "forbidden")},
        )
        try:
            await write(event)
        except Exception:  # the caller is refused either way; the failure is logged by write
            log.warning("audit_denial_not_recorded", action=event.action)
