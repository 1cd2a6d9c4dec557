"""LearningEvent with the denormalized course, department and enrollment ids (API-ISS-035)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from app.common.documents import TimestampedDocument


class LearningEvent(TimestampedDocument):
    type: str  # learning-event-type lookup code (kebab-case)
    user_id: PydanticObjectId
    occurred_at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)
    course_id: PydanticObjectId | None = None
    department_id: PydanticObjectId | None = None
    enrollment_id: PydanticObjectId | None = None

    class Settings:
        name = "learning_events"
        indexes = [
            IndexModel([("department_id", ASCENDING), ("occurred_at", ASCENDING)]),
            IndexModel([("course_id", ASCENDING), ("occurred_at", ASCENDING)]),
            IndexModel([("user_id", ASCENDING), ("occurred_at", ASCENDING)]),
            IndexModel([("type", ASCENDING), ("occurred_at", ASCENDING)]),
            IndexModel([("occurred_at", ASCENDING)]),
            IndexModel([("enrollment_id", ASCENDING)]),
        ]
