"""ReportTemplate (API-ISS-027): a saved report definition that can be shared and run.

`version` starts at 1 and grows by one on every change; updates carry the version they were
based on (If-Match) so two editors never overwrite each other silently.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.common.documents import TimestampedDocument
from app.reports.jobs.models import Requester


class Visibility(StrEnum):
    PRIVATE = "private"
    DEPARTMENT = "department"
    ORGANIZATION = "organization"


class ReportTemplate(TimestampedDocument):
    name: str
    description: str | None = None
    report_type: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    format: str
    visibility: str = Visibility.PRIVATE.value
    # Who made it, with the departments it was made in (what "department" sharing means).
    owner: Requester
    version: int = 1
    archived: bool = False

    class Settings:
        name = "report_templates"
        indexes = [
            IndexModel([("owner.user_id", ASCENDING), ("created_at", DESCENDING)]),
            IndexModel([("visibility", ASCENDING), ("owner.department_ids", ASCENDING)]),
            IndexModel([("report_type", ASCENDING)]),
            IndexModel([("created_at", DESCENDING)]),
        ]
