"""Writing audit events. An action that cannot be audited does not succeed: `record` raises a
503 problem, so no success reaches the caller unrecorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from app.audit import repository
from app.audit.context import current_request
from app.audit.models import Actor, AuditAction, AuditEvent, AuditOutcome
from app.common.time import utcnow
from app.config import Settings
from app.errors import ServiceUnavailable
from app.reports.jobs.models import ReportJob
from app.security import Principal

log = structlog.get_logger(__name__)

DEFAULT_RETENTION_DAYS: int = Settings.model_fields["audit_retention_days"].default


def actor_of(principal: Principal) -> Actor:
    return Actor(
        user_id=principal.user_id,
        subject=principal.user_id,
        name=principal.name,
        role=principal.role.value,
        roles=[r.value for r in principal.roles],
        department_ids=list(principal.department_ids),
    )


def build_event(
    action: AuditAction | str,
    principal: Principal | None,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    outcome: AuditOutcome = AuditOutcome.ALLOWED,
    reason: str | None = None,
    scope: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """The event, with the request's id, client address, method and path when inside one."""
    info = current_request.get()
    retention = info.settings.audit_retention_days if info else DEFAULT_RETENTION_DAYS
    if principal is None and info is not None:
        stored = info.state.get("principal")
        principal = stored if isinstance(stored, Principal) else None
    now = utcnow()
    return AuditEvent(
        created_at=now,
        expires_at=now + timedelta(days=retention),
        action=str(action),
        outcome=outcome,
        reason=reason,
        actor=actor_of(principal) if principal else None,
        object_type=object_type,
        object_id=object_id,
        scope=scope,
        parameters=parameters,
        details=details or {},
        request_id=info.request_id if info else None,
        client_address=info.client_address if info else None,
        method=info.method if info else None,
        path=info.path if info else None,
    )


async def write(event: AuditEvent) -> None:
    """Inserts the event; any failure is a 503 (`audit-unavailable`)."""
    try:
        await repository.add(event)
    except Exception as exc:
        log.error("audit_write_failed", action=event.action, error=str(exc)[:200])
        raise ServiceUnavailable(
            "The action could not be recorded in the audit trail, so it is not confirmed; "
            "try again shortly.",
            code="audit-unavailable",
        ) from exc


async def record(
    action: AuditAction,
    principal: Principal | None,
    *,
    object_type: str | None = None,
    object_id: object = None,
    **fields: Any,
) -> None:
    """Records an allowed action (see `build_event` for `fields`; the object type defaults to
    the action's noun: `template.updated` -> `template`); raises a 503 problem when the audit
    trail cannot be written."""
    await write(
        build_event(
            action,
            principal,
            object_type=object_type or action.value.split(".")[0],
            object_id=str(object_id) if object_id is not None else None,
            **fields,
        )
    )


async def record_job(
    action: AuditAction, principal: Principal, job: ReportJob, **details: Any
) -> None:
    """A report run: the job, its effective data scope and its resolved parameters."""
    await record(
        action,
        principal,
        object_type="job",
        object_id=job.id,
        scope=job.scope,
        parameters=job.resolved_parameters,
        details={
            "reportType": job.report_type,
            "format": job.format,
            **({"templateId": str(job.template_id)} if job.template_id else {}),
            **({"scheduleId": str(job.schedule_id)} if job.schedule_id else {}),
            **({"retryOf": str(job.retry_of_job_id)} if job.retry_of_job_id else {}),
            **details,
        },
    )


async def record_run(
    action: AuditAction, principal: Principal, job: ReportJob, *, replayed: bool
) -> None:
    """A request that submits a report: `action` for the job it created, or `job.replayed` on
    the original job when an Idempotency-Key answered with it (so one job has one creating
    event however often its request is replayed; `replayedAction` names the endpoint and
    `originalRequestId` the request that created it)."""
    if not replayed:
        await record_job(action, principal, job)
        return
    await record_job(
        AuditAction.JOB_REPLAYED,
        principal,
        job,
        replayedAction=action.value,
        originalRequestId=job.request_id,
    )
