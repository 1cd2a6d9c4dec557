"""All queries on report templates."""

from __future__ import annotations

import re
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument

from app.common.pagination import Listed, PageRequest, paginate
from app.common.time import utcnow
from app.reports.templates.models import ReportTemplate, Visibility
from app.security import Principal, Role


def visible_filter(principal: Principal) -> dict[str, Any]:
    """Templates the caller may see (spec §6): admins all; learners their own; others their
    own, those shared with the organization and those shared with a department they are in."""
    if principal.is_admin:
        return {}
    own: dict[str, Any] = {"owner.user_id": principal.user_id}
    if principal.role == Role.LEARNER:
        return own
    shared: list[dict[str, Any]] = [own, {"visibility": Visibility.ORGANIZATION.value}]
    if principal.department_ids:
        shared.append(
            {
                "visibility": Visibility.DEPARTMENT.value,
                "owner.department_ids": {"$in": list(principal.department_ids)},
            }
        )
    return {"$or": shared}


def is_visible(template: ReportTemplate, principal: Principal) -> bool:
    if principal.is_admin or template.owner.user_id == principal.user_id:
        return True
    if principal.role == Role.LEARNER:
        return False
    if template.visibility == Visibility.ORGANIZATION:
        return True
    return template.visibility == Visibility.DEPARTMENT and bool(
        set(template.owner.department_ids) & set(principal.department_ids)
    )


async def get(template_id: PydanticObjectId) -> ReportTemplate | None:
    return await ReportTemplate.get(template_id)


async def insert(template: ReportTemplate) -> ReportTemplate:
    return await template.insert()


def list_filter(
    principal: Principal,
    *,
    report_type: str | None,
    visibility: str | None,
    owner: str | None,
    q: str | None,
    archived: bool,
) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = []
    scope = visible_filter(principal)
    if scope:
        clauses.append(scope)
    clauses.append({"archived": True} if archived else {"archived": {"$ne": True}})
    if report_type:
        clauses.append({"report_type": report_type})
    if visibility:
        clauses.append({"visibility": visibility})
    if owner:
        clauses.append({"owner.user_id": owner})
    if q:
        clauses.append({"name": {"$regex": re.escape(q), "$options": "i"}})
    return {"$and": clauses}


async def find_page(query: dict[str, Any], page: PageRequest) -> Listed[ReportTemplate]:
    return await paginate(ReportTemplate, query, page)


async def update_if_version(
    template_id: PydanticObjectId, version: int | None, changes: dict[str, Any]
) -> ReportTemplate | None:
    """Applies `changes` and bumps the version, in one atomic update: only if the stored
    version is still `version`, or whatever it is when `version` is None (None: no such
    template, or not at that version)."""
    condition = {} if version is None else {"version": version}
    raw = await ReportTemplate.get_pymongo_collection().find_one_and_update(
        {"_id": template_id, **condition},
        {"$set": {**changes, "updated_at": utcnow()}, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    return ReportTemplate.model_validate(raw) if raw else None


async def delete(template_id: PydanticObjectId) -> None:
    await ReportTemplate.get_pymongo_collection().delete_one({"_id": template_id})
