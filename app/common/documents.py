"""Base for stored documents: UTC createdAt / updatedAt kept by the ODM."""

from __future__ import annotations

from datetime import datetime

from beanie import Document, Insert, Replace, Save, SaveChanges, Update, before_event
from pydantic import Field

from app.common.time import utcnow


class TimestampedDocument(Document):
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @before_event(Insert)
    def _stamp_created(self) -> None:
        now = utcnow()
        self.created_at = self.created_at or now
        self.updated_at = now

    @before_event(Replace, Save, SaveChanges, Update)
    def _stamp_updated(self) -> None:
        self.updated_at = utcnow()

    class Settings:
        bson_encoders: dict[type, object] = {}
