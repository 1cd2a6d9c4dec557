"""A template's versions: every change keeps one (`repository.change`), never altered after.
Whoever may see the template may see all its versions (its current visibility decides, not
the one a version had); nothing here changes anything. Restoring a version is a change like
any other: a PATCH with that version's content, which becomes the newest version."""

from __future__ import annotations

from beanie import PydanticObjectId

from app.common.pagination import Listed, PageRequest
from app.errors import NotFound
from app.reports.templates import repository
from app.reports.templates.models import CONTENT_FIELDS, ReportTemplate, ReportTemplateVersion
from app.reports.templates.service import get_visible
from app.security import Principal


async def list_versions(
    principal: Principal, template_id: str, page: PageRequest
) -> Listed[ReportTemplateVersion]:
    template = await get_visible(principal, template_id)
    assert template.id is not None
    return await repository.find_versions(template.id, page)


async def get_version(
    principal: Principal, template_id: str, number: int
) -> tuple[ReportTemplate, ReportTemplateVersion]:
    """The template (as it is now) and its version `number`; 404 when either is unknown."""
    template = await get_visible(principal, template_id)
    assert template.id is not None
    version = await find_version(template.id, number)
    if version is None:
        raise NotFound(
            f"The template {template_id} has no version {number} (its latest is "
            f"{template.version}).",
            code="template-version-not-found",
        )
    return template, version


async def find_version(template_id: PydanticObjectId, number: int) -> ReportTemplateVersion | None:
    return await repository.get_version(template_id, number)


def as_of(template: ReportTemplate, version: ReportTemplateVersion) -> ReportTemplate:
    """The template as it was at `version`: that version's content, number and time; its id,
    owner and creation stay."""
    shown: ReportTemplate = template.model_copy(
        update={
            **{name: getattr(version, name) for name in CONTENT_FIELDS},
            "version": version.version,
            "updated_at": version.created_at,
        }
    )
    return shown


async def backfill() -> int:
    """At start-up: keeps the current version of each template that has none kept (saved
    before versions were kept, or changed by an older release during an upgrade). Idempotent;
    the versions before it were never kept and stay unknown."""
    return await repository.backfill_versions()
