"""ReportTemplate (API-ISS-027): a saved report definition that can be shared and run.

`version` starts at 1 and grows by one on every change; updates carry the version they were
based on (If-Match) so two editors never overwrite each other silently.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field
from pymongo import ASCENDING, IndexModel

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
