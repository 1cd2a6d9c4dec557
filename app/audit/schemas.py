"""The audit trail over HTTP (camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from app.audit.models import AuditAction, AuditEvent, AuditOutcome
from app.common.schemas import ApiModel, listed
from app.security import Role


class ActorOut(ApiModel):
    user_id: str = Field(description="The token subject")
    name: str | None = None
    role: Annotated[str, listed(Role)] | None = Field(
        default=None, description="The most privileged of the roles"
    )
    roles: list[str] = Field(default_factory=list)
    department_ids: list[str] = Field(default_factory=list)


class AuditEventOut(ApiModel):
    id: str
    at: datetime
    action: Annotated[str, listed(AuditAction)] = Field(
        description="e.g. job.created, job.downloaded, template.updated"
    )
    outcome: AuditOutcome
    reason: str | None = Field(default=None, description="Why it was denied")
    actor: ActorOut | None = None
    object_type: str | None = None
    object_id: str | None = None
    scope: dict[str, Any] | None = Field(
        default=None, description="The effective data scope of a report run"
    )
    parameters: dict[str, Any] | None = Field(
        default=None, description="The resolved parameters of a report run"
    )
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    client_address: str | None = None
    method: str | None = None
    path: str | None = None

    @classmethod
    def from_document(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=str(event.id),
            at=event.created_at,
            action=event.action,
            outcome=event.outcome,
            reason=event.reason,
            actor=ActorOut.model_validate(event.actor.model_dump()) if event.actor else None,
            object_type=event.object_type,
            object_id=event.object_id,
            scope=event.scope,
            parameters=event.parameters,
            details=event.details,
            request_id=event.request_id,
            client_address=event.client_address,
            method=event.method,
            path=event.path,
        )
