"""The learning-event contract (API-ISS-025): what a client sends and what it gets back.

Event types are kebab-case `learning-event-type` lookup codes only; legacy spellings such as
`COURSE_COMPLETED` are refused with a 422 that names the kebab-case code to use."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from beanie import PydanticObjectId
from pydantic import ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from app.common.schemas import ApiInput, ApiModel
from app.common.time import BoundedDateTime
from app.errors import ErrorCodeValue, FieldError
from app.lookups.codes import EventTypeCode, EventTypeValue

# Keys the service owns: a client may not smuggle them in through the payload.
RESERVED_PAYLOAD_KEYS = frozenset(
    {"userId", "courseId", "departmentId", "enrollmentId", "user_id", "course_id"}
)

ObjectIdStr = Annotated[
    PydanticObjectId,
    WithJsonSchema(
        {"type": "string", "pattern": "^[0-9a-f]{24}$", "example": "665f1c2e8b3e4a0012a0b001"}
    ),
]


class EventPayload(ApiInput):
    """Details of the event. The known keys are typed; other keys are kept as sent."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    lesson_id: str | None = Field(default=None, max_length=100, description="lesson-* events")
    quiz_id: str | None = Field(default=None, max_length=100, description="quiz-* events")
    score: float | None = Field(default=None, ge=0, le=100, description="quiz-submitted: 0–100")
    duration_seconds: int | None = Field(
        default=None, ge=0, le=7 * 24 * 3600, description="Time spent on this step"
    )

    @model_validator(mode="after")
    def _no_reserved_keys(self) -> EventPayload:
        reserved = sorted(RESERVED_PAYLOAD_KEYS & set(self.model_extra or {}))
        if reserved:
            raise ValueError(
                f"payload may not carry {', '.join(reserved)}; send courseId at the top level "
                "(the service fills userId's department and enrollment itself)"
            )
        return self

    def to_document(self) -> dict[str, Any]:
        """Stored with camelCase keys (`payload.durationSeconds`, `payload.quizId`, ...)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class LearningEventCreate(ApiInput):
    """One learning event as the learning platform reports it."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "quiz-submitted",
                    "userId": "665f1c2e8b3e4a0012a0b001",
                    "courseId": "665f1c2e8b3e4a0012a0c001",
                    "occurredAt": "2026-03-01T09:30:00Z",
                    "payload": {"quizId": "final-exam", "score": 82.5, "durationSeconds": 540},
                }
            ]
        },
    )

    type: EventTypeCode = Field(
        description="A kebab-case `learning-event-type` code (see /api/v1/reports/metadata)"
    )
    user_id: ObjectIdStr = Field(description="The learner the event is about")
    course_id: ObjectIdStr | None = Field(
        default=None, description="Required for course events (all built-in event types)"
    )
    occurred_at: BoundedDateTime = Field(
        description=(
            "When it happened (ISO 8601; a time without an offset is taken as UTC; "
            "between 1970-01-01 and 2100-12-31)"
        )
    )
    payload: EventPayload = Field(default_factory=EventPayload)


class LearningEventOut(ApiModel):
    """A stored learning event, with the ids the service filled in."""

    id: str
    type: EventTypeValue
    user_id: str
    course_id: str | None
    department_id: str | None
    enrollment_id: str | None
    occurred_at: datetime
    payload: dict[str, Any]
    created_at: datetime


class LearningEventBatch(ApiInput):
    """Many events at once. Each item is checked on its own: good items are stored even when
    others are rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "type": "lesson-completed",
                            "userId": "665f1c2e8b3e4a0012a0b001",
                            "courseId": "665f1c2e8b3e4a0012a0c001",
                            "occurredAt": "2026-03-01T09:00:00Z",
                            "payload": {"lessonId": "lesson-3", "durationSeconds": 600},
                        },
                        {
                            "type": "COURSE_COMPLETED",
                            "userId": "665f1c2e8b3e4a0012a0b001",
                            "courseId": "665f1c2e8b3e4a0012a0c001",
                            "occurredAt": "2026-03-01T09:40:00Z",
                        },
                    ]
                }
            ]
        },
    )

    # Items stay raw here so one bad item does not reject the whole batch; each is validated
    # as a LearningEventCreate by the service (the schema below documents exactly that).
    events: list[
        Annotated[
            dict[str, Any],
            WithJsonSchema({"$ref": "#/components/schemas/LearningEventCreate"}),
        ]
    ] = Field(description="At most LEARNING_EVENTS_BATCH_MAX items (default 500)")


class BatchItemResult(ApiModel):
    index: int = Field(description="Position of the item in `events`")
    status: Literal["accepted", "rejected"]
    id: str | None = Field(default=None, description="The stored event's id, when accepted")
    reason: str | None = Field(default=None, description="Why it was rejected")
    code: ErrorCodeValue | None = Field(
        default=None, description="Machine-readable reason, when rejected"
    )
    errors: list[FieldError] | None = None


class BatchResult(ApiModel):
    """Per-item outcome (a 207-style report in a 200 response)."""

    accepted: int
    rejected: int
    results: list[BatchItemResult]
