"""ReportTemplate (API-ISS-027): a saved report definition that can be shared and run.

`version` starts at 1 and grows by one on every change; updates carry the version they were
based on (If-Match) so two editors never overwrite each other silently. Every version is kept as
an immutable `ReportTemplateVersion`, written in the same transaction as the change that made it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.common.documents import TimestampedDocument
from app.common.pagination import SortField, Sorting, created_at, sort_indexes
from app.reports.jobs.models import Requester


class Visibility(StrEnum):
    PRIVATE = "private"
    DEPARTMENT = "department"
    ORGANIZATION = "organization"


TEMPLATE_SORTS = Sorting(
    (
        created_at("the template"),
        SortField("updatedAt", "updated_at", "datetime", "when it was last changed"),
        SortField("name", "name", "string", "its name, by code point (upper case before lower)"),
    ),
    default="-createdAt",
)


class ReportTemplate(TimestampedDocument):
    name: str
    description: str | None = None
    report_type: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    format: str
    locale: str | None = None  # None: each run's requester's (app.i18n locale codes)
    columns: list[str] | None = None  # the columns its files show, in order; None: all
    visibility: str = Visibility.PRIVATE.value
    # Who made it, with the departments it was made in (what "department" sharing means).
    owner: Requester
    version: int = 1
    archived: bool = False

    class Settings:
        name = "report_templates"
        indexes = [
            IndexModel([("visibility", ASCENDING), ("owner.department_ids", ASCENDING)]),
            IndexModel([("report_type", ASCENDING)]),
            # The list: a learner's own templates (and `owner=`), everyone's for the others,
            # whose visibility (own, shared with a department or the organization) is tested
            # on the templates read in order: an organization holds few templates.
            *sort_indexes(TEMPLATE_SORTS, ("owner.user_id",), ()),
        ]


# What a version holds of its template (its content), in the order changes are listed: what a
# PATCH may change and a restore sends back.
CONTENT_FIELDS = (
    "name",
    "description",
    "report_type",
    "format",
    "parameters",
    "columns",
    "locale",
    "visibility",
    "archived",
)


class VersionOrigin(StrEnum):
    CREATED = "created"  # version 1: the template was saved (or duplicated)
    CHANGED = "changed"  # a PATCH
    # The template as it was when versions began to be kept (earlier ones were not kept).
    BACKFILLED = "backfilled"


class Editor(BaseModel):
    user_id: str
    name: str


VERSION_SORTS = Sorting(
    (SortField("version", "version", "integer", "its number", unique=True),),
    default="-version",
)


class ReportTemplateVersion(Document):
    """One version of a template, never changed once written: its content, who made it and
    when, and which content fields differ from the version before."""

    template_id: PydanticObjectId
    version: int
    name: str
    description: str | None = None
    report_type: str
    format: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    locale: str | None = None  # None: each run's requester's
    columns: list[str] | None = None  # None: every column
    visibility: str
    archived: bool = False
    origin: VersionOrigin
    changed_fields: list[str] = Field(default_factory=list)  # stored names, CONTENT_FIELDS order
    changed_by: Editor | None = None  # None: backfilled (nobody recorded who)
    created_at: datetime

    class Settings:
        name = "report_template_versions"
        indexes = [
            # One document per (template, version), and the list in either order.
            IndexModel([("template_id", ASCENDING), ("version", DESCENDING)], unique=True),
        ]

    @classmethod
    def of(
        cls,
        template: ReportTemplate,
        *,
        origin: VersionOrigin,
        changed_fields: list[str],
        changed_by: Editor | None,
        at: datetime,
    ) -> ReportTemplateVersion:
        """The version `template` is at, as it is now."""
        assert template.id is not None
        return cls(
            template_id=template.id,
            version=template.version,
            **{name: getattr(template, name) for name in CONTENT_FIELDS},
            origin=origin,
            changed_fields=changed_fields,
            changed_by=changed_by,
            created_at=at,
        )
