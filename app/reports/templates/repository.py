"""All queries on report templates and their versions. A template and the version document of
its current content are written in one transaction (`insert`, `change`, `delete`), so a
version is never lost or written twice, whatever runs at the same time."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.common.pagination import Listed, PageRequest, paginate
from app.common.time import utcnow
from app.reports.templates.models import (
    CONTENT_FIELDS,
    Editor,
    ReportTemplate,
    ReportTemplateVersion,
    VersionOrigin,
    Visibility,
)
from app.security import Principal, Role

log = structlog.get_logger(__name__)
T = TypeVar("T")


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


async def _in_transaction(work: Callable[[Any], Awaitable[T]]) -> T:
    """`work(session)` in one transaction; `with_transaction` runs it again after a transient
    conflict (two changes of one template at once: the second starts over on what the first
    wrote)."""
    client = ReportTemplate.get_pymongo_collection().database.client
    async with client.start_session() as session:
        return await session.with_transaction(work)


async def insert(template: ReportTemplate, editor: Editor) -> ReportTemplate:
    """Saves a new template and its version 1 together."""
    template.id = template.id or PydanticObjectId()

    async def work(session: Any) -> ReportTemplate:
        await template.insert(session=session)
        first = ReportTemplateVersion.of(
            template,
            origin=VersionOrigin.CREATED,
            changed_fields=[],
            changed_by=editor,
            at=template.created_at,
        )
        await first.insert(session=session)
        return template

    return await _in_transaction(work)


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


@dataclass(frozen=True)
class Change:
    """What a change met: the template after it (as it is when nothing differed), or None when
    there is no such template; `stale`: it was not at the version asked for (nothing written);
    `changed`: the content fields that differ from the version before."""

    template: ReportTemplate | None
    stale: bool = False
    changed: tuple[str, ...] = ()


MAX_CHANGE_ATTEMPTS = 100


async def change(
    template_id: PydanticObjectId, version: int | None, changes: dict[str, Any], editor: Editor
) -> Change:
    """Applies `changes` to the template at `version` (at whatever version it is when None)
    and writes the next version with what changed, in one transaction. Values equal to the
    current ones are no change: when nothing differs nothing is written."""
    templates = ReportTemplate.get_pymongo_collection()

    async def work(session: Any) -> Change | None:
        raw = await templates.find_one({"_id": template_id}, session=session)
        if raw is None:
            return Change(None)
        current = ReportTemplate.model_validate(raw)
        if version is not None and current.version != version:
            return Change(current, stale=True)
        changed = tuple(
            name
            for name in CONTENT_FIELDS
            if name in changes and changes[name] != getattr(current, name)
        )
        if not changed:
            return Change(current)
        # As the server stores it (milliseconds): the answer equals what is read back later.
        moment = utcnow()
        now = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        number = current.version + 1
        written = await templates.update_one(
            {"_id": template_id, "version": raw.get("version")},
            {"$set": {**changes, "updated_at": now, "version": number}},
            session=session,
        )
        if written.modified_count != 1:
            return None  # changed since it was read: read it again
        await _keep(current, session)  # the version before, when it was never kept
        after = current.model_copy(update={**changes, "updated_at": now, "version": number})
        kept = ReportTemplateVersion.of(
            after,
            origin=VersionOrigin.CHANGED,
            changed_fields=list(changed),
            changed_by=editor,
            at=now,
        )
        await kept.insert(session=session)
        return Change(after, changed=changed)

    for _ in range(MAX_CHANGE_ATTEMPTS):
        outcome = await _in_transaction(work)
        if outcome is not None:
            return outcome
    raise RuntimeError(f"template {template_id} kept changing under {MAX_CHANGE_ATTEMPTS} attempts")


async def delete(template_id: PydanticObjectId) -> None:
    """Deletes the template and its versions together."""

    async def work(session: Any) -> None:
        await ReportTemplate.get_pymongo_collection().delete_one(
            {"_id": template_id}, session=session
        )
        await ReportTemplateVersion.get_pymongo_collection().delete_many(
            {"template_id": template_id}, session=session
        )

    await _in_transaction(work)


async def get_version(template_id: PydanticObjectId, number: int) -> ReportTemplateVersion | None:
    return await ReportTemplateVersion.find_one({"template_id": template_id, "version": number})


async def find_versions(
    template_id: PydanticObjectId, page: PageRequest
) -> Listed[ReportTemplateVersion]:
    return await paginate(ReportTemplateVersion, {"template_id": template_id}, page)


async def _keep(template: ReportTemplate, session: Any) -> bool:
    """Writes the version `template` is at, unless one is kept already (a template saved
    before versions were kept); whether it wrote one."""
    assert template.id is not None
    kept = ReportTemplateVersion.of(
        template,
        origin=VersionOrigin.BACKFILLED,
        changed_fields=[],
        changed_by=None,
        at=template.updated_at,
    )
    content = kept.model_dump(exclude={"id", "template_id", "version"})
    result = await ReportTemplateVersion.get_pymongo_collection().update_one(
        {"template_id": template.id, "version": template.version},
        {"$setOnInsert": content},
        upsert=True,
        session=session,
    )
    return result.upserted_id is not None


BACKFILL_BATCH = 500


async def backfill_versions() -> int:
    """Keeps the current version of every template that has no version document for it (saved
    before versions were kept, or changed by an older release). Run at start-up; idempotent:
    a version already kept is left as it is. Returns how many it wrote."""
    templates = ReportTemplate.get_pymongo_collection()
    versions = ReportTemplateVersion.get_pymongo_collection()
    written, after = 0, None
    while True:
        heads = (
            await templates.find({} if after is None else {"_id": {"$gt": after}}, {"version": 1})
            .sort("_id", 1)
            .limit(BACKFILL_BATCH)
            .to_list()
        )
        if not heads:
            if written:
                log.info("template_versions_backfilled", written=written)
            return written
        after = heads[-1]["_id"]
        ids = [head["_id"] for head in heads]
        have = {
            (doc["template_id"], doc["version"])
            for doc in await versions.find(
                {"template_id": {"$in": ids}}, {"_id": 0, "template_id": 1, "version": 1}
            ).to_list()
        }
        missing = [h["_id"] for h in heads if (h["_id"], h.get("version", 1)) not in have]
        if not missing:
            continue
        for raw in await templates.find({"_id": {"$in": missing}}).to_list():
            try:
                written += await _keep(ReportTemplate.model_validate(raw), None)
            except DuplicateKeyError:
                pass  # another process kept it at the same moment
