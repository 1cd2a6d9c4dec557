"""Changing a lookup value (admins): relabel it, or switch it off / on for new data."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from app.audit import AuditAction, record
from app.common.schemas import ApiInput
from app.common.time import utcnow
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.i18n import LocaleCode
from app.lookups import validation
from app.lookups.models import LookupValue
from app.lookups.structural import is_structural
from app.security import Principal


class LookupUpdate(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"isActive": False},
                {"label": "Last 12 months"},
                {"labels": {"de": "Letzte 12 Monate"}},
            ]
        }
    )

    label: str | None = Field(default=None, min_length=1, max_length=200)
    labels: dict[LocaleCode, Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None,
        description="Labels per locale, merged over the stored ones (a re-seed writes the "
        "built-in codes' labels again)",
    )
    description: str | None = Field(default=None, max_length=1000)
    is_active: bool | None = Field(
        default=None, description="false: refused for new data (stored data keeps reading)"
    )


async def update_lookup(
    principal: Principal, category: str, code: str, changes: LookupUpdate
) -> LookupValue:
    if not principal.is_admin:
        raise Forbidden("Only administrators may change lookup values.", code="admin-required")
    value = await LookupValue.find_one({"category": category, "code": code})
    if value is None:
        raise NotFound(f"There is no {category!r} code {code!r}.", code="lookup-value-not-found")
    fields = changes.model_dump(exclude_unset=True)
    if not fields or fields.get("labels", {}) is None:
        raise ValidationFailed.one(
            "body", "name at least one of label, labels, description, isActive"
        )
    if "labels" in fields:
        fields["labels"] = {**value.labels, **fields["labels"]}
    if fields.get("is_active") is False and is_structural(category, code):
        raise Conflict(
            f"'{code}' is a structural {category} code the service depends on: it may be "
            "relabelled but not deactivated (see docs/decisions.md).",
            code="lookup-value-structural",
        )
    before: dict[str, Any] = {name: getattr(value, name) for name in fields}
    await value.set({**fields, "updated_at": utcnow()})
    await record(
        AuditAction.LOOKUP_CHANGED,
        principal,
        object_type="lookup",
        object_id=f"{category}/{code}",
        details={"before": before, "after": fields},
    )
    validation.invalidate()
    await validation.refresh(force=True)
    return value
