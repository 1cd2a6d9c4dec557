"""LookupValue: the controlled vocabularies (report types, statuses, formats, ...)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pymongo import ASCENDING, IndexModel

from app.common.documents import TimestampedDocument


class LookupValue(TimestampedDocument):
    category: str
    code: str
    label: str  # in the default locale (English)
    # The label in each other locale (`{"de": "Abgeschlossen"}`); a locale missing here prints
    # `label` translated by the message catalog, else `label` itself.
    labels: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    sort_order: int = 0
    is_active: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)

    class Settings:
        name = "lookup_values"
        indexes = [
            IndexModel([("category", ASCENDING), ("code", ASCENDING)], unique=True),
            IndexModel([("category", ASCENDING), ("sort_order", ASCENDING)]),
        ]
