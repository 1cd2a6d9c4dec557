"""`GET /api/v1/reports/audit`: the audit trail, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit.models import AUDIT_SORTS, AuditAction, AuditOutcome
from app.audit.repository import AuditFilters, find_events
from app.audit.schemas import AuditEventOut
from app.common.schemas import Page
from app.common.time import AwareBoundedDateTime
from app.errors import Forbidden, ValidationFailed, problem_responses
from app.security import CurrentPrincipal

router = APIRouter(prefix="/api/v1/reports/audit", tags=["report-audit"])

ACTIONS = [a.value for a in AuditAction]


@router.get(
    "",
    name="audit_list",
    summary="The audit trail, newest first (admins only)",
    description=(
        "Who did what to which object, allowed or denied (with the reason), from which request "
        "and client address; report runs carry their effective data scope and resolved "
        "parameters. Kept `AUDIT_RETENTION_DAYS`. A refused call here is itself audited. "
        "Newest first, or oldest first with `sort=createdAt`. Pages: pass `nextCursor` back as "
        "`cursor` with the same filters and sort; `total` counts the matching events when that "
        "is cheap, else it is null and `totalAtLeast` a lower bound."
    ),
    response_model=Page[AuditEventOut],
    responses=problem_responses(401, 403, 422),
)
async def list_audit_events(
    principal: CurrentPrincipal,
    user_id: Annotated[str | None, Query(alias="userId", max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=64, description=", ".join(ACTIONS))] = None,
    object_id: Annotated[str | None, Query(alias="objectId", max_length=200)] = None,
    object_type: Annotated[str | None, Query(alias="objectType", max_length=64)] = None,
    outcome: AuditOutcome | None = None,
    occurred_from: Annotated[
        AwareBoundedDateTime | None,
        Query(alias="from", description="Included (ISO 8601, with offset)"),
    ] = None,
    occurred_to: Annotated[
        AwareBoundedDateTime | None,
        Query(alias="to", description="Excluded (ISO 8601, with offset)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[str, AUDIT_SORTS.query()] = AUDIT_SORTS.default,
) -> Page[AuditEventOut]:
    if not principal.is_admin:
        raise Forbidden("Only administrators may read the audit trail.", code="admin-required")
    if action is not None and action not in ACTIONS:
        raise ValidationFailed.one(
            "query.action", f"'{action}' is not an audited action", allowed=ACTIONS
        )
    if occurred_from and occurred_to and occurred_from >= occurred_to:
        raise ValidationFailed.one("query.to", "must be after `from`")
    filters = AuditFilters(
        user_id=user_id,
        action=action,
        object_id=object_id,
        object_type=object_type,
        outcome=outcome,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
    )
    listed = await find_events(filters, AUDIT_SORTS.request(sort, cursor, limit))
    return listed.page(AuditEventOut.from_document)
