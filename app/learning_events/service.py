"""Recording learning events: who may post what, and the denormalized ids the service fills.

Rules:
- An admin may post events for any user; every other caller only for itself (`userId` equal to
  the token's `sub`). Posting for someone else is a 403 (a rejected item in a batch).
- `courseId` is required for course events (every built-in type). The service fills
  `departmentId` from the user and `enrollmentId` from the user's enrollment in that course; an
  unknown user, an unknown course or a missing enrollment is a 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId
from pydantic import ValidationError
from pymongo.errors import BulkWriteError

from app.config import Settings
from app.errors import AppError, FieldError, Forbidden, ValidationFailed, validation_errors
from app.learning_events.models import LearningEvent
from app.learning_events.schemas import (
    BatchItemResult,
    BatchResult,
    LearningEventCreate,
    LearningEventOut,
)
from app.lookups import validation
from app.platform.models import Course, Enrollment, User
from app.runtime import deadline
from app.security import Principal

# Event types that are about a course (need courseId, get an enrollmentId). A type an operator
# adds later that is not listed here may be posted without a course.
COURSE_EVENT_TYPES = frozenset(
    {
        "course-enrolled",
        "course-started",
        "lesson-started",
        "lesson-completed",
        "quiz-started",
        "quiz-submitted",
        "quiz-passed",
        "quiz-failed",
        "course-completed",
        "certificate-issued",
    }
)


def to_out(event: LearningEvent) -> LearningEventOut:
    def s(value: PydanticObjectId | None) -> str | None:
        return str(value) if value is not None else None

    return LearningEventOut(
        id=str(event.id),
        type=event.type,
        user_id=str(event.user_id),
        course_id=s(event.course_id),
        department_id=s(event.department_id),
        enrollment_id=s(event.enrollment_id),
        occurred_at=event.occurred_at,
        payload=event.payload,
        created_at=event.created_at,
    )


def authorize(principal: Principal, user_id: PydanticObjectId) -> None:
    if principal.is_admin or principal.user_id == str(user_id):
        return
    raise Forbidden(
        "Only an admin may record events for another user; "
        f"your token's sub is {principal.user_id}, the event's userId is {user_id}.",
        code="event-user-mismatch",
    )


@dataclass
class _Lookups:
    """Users, courses and enrollments needed to resolve a set of events, read in 3 queries."""

    users: dict[PydanticObjectId, User]
    courses: dict[PydanticObjectId, Course]
    enrollments: dict[tuple[PydanticObjectId, PydanticObjectId], Enrollment]

    @classmethod
    async def load(cls, events: Sequence[LearningEventCreate]) -> _Lookups:
        user_ids = list({e.user_id for e in events})
        course_ids = list({e.course_id for e in events if e.course_id is not None})
        users = {u.id: u for u in await User.find({"_id": {"$in": user_ids}}).to_list() if u.id}
        courses: dict[PydanticObjectId, Course] = {}
        enrollments: dict[tuple[PydanticObjectId, PydanticObjectId], Enrollment] = {}
        if course_ids:
            courses = {
                c.id: c for c in await Course.find({"_id": {"$in": course_ids}}).to_list() if c.id
            }
            found = await Enrollment.find(
                {"user_id": {"$in": user_ids}, "course_id": {"$in": course_ids}}
            ).to_list()
            enrollments = {(e.user_id, e.course_id): e for e in found}
        return cls(users=users, courses=courses, enrollments=enrollments)


def build_event(data: LearningEventCreate, lookups: _Lookups, *, prefix: str) -> LearningEvent:
    """The document to store, with courseId / departmentId / enrollmentId filled; raises
    ValidationFailed naming the field when something it points at does not exist."""
    user = lookups.users.get(data.user_id)
    if user is None:
        raise ValidationFailed.one(
            f"{prefix}.userId", f"unknown user {data.user_id}", type="unknown-user"
        )
    enrollment_id: PydanticObjectId | None = None
    if data.course_id is None:
        if data.type in COURSE_EVENT_TYPES:
            raise ValidationFailed.one(
                f"{prefix}.courseId", f"required for {data.type} events", type="missing"
            )
    else:
        if data.course_id not in lookups.courses:
            raise ValidationFailed.one(
                f"{prefix}.courseId", f"unknown course {data.course_id}", type="unknown-course"
            )
        enrollment = lookups.enrollments.get((data.user_id, data.course_id))
        if enrollment is None:
            raise ValidationFailed.one(
                f"{prefix}.courseId",
                f"user {data.user_id} is not enrolled in course {data.course_id}",
                type="no-enrollment",
            )
        enrollment_id = enrollment.id
    return LearningEvent(
        type=data.type,
        user_id=data.user_id,
        occurred_at=data.occurred_at,
        payload=data.payload.to_document(),
        course_id=data.course_id,
        department_id=user.department_id,
        enrollment_id=enrollment_id,
    )


async def record_event(data: LearningEventCreate, principal: Principal) -> LearningEventOut:
    authorize(principal, data.user_id)
    event = build_event(data, await _Lookups.load([data]), prefix="body")
    event.id = PydanticObjectId()
    _forget_unless_answered([event.id])
    await event.insert()
    return to_out(event)


def _forget_unless_answered(ids: list[PydanticObjectId]) -> None:
    """Events stored by a request that then fails (its deadline passed) are removed again: a
    client told the request failed sends them again, and they must not count twice."""

    async def forget() -> None:
        await LearningEvent.get_pymongo_collection().delete_many({"_id": {"$in": ids}})

    deadline.on_unanswered("learning-events-not-answered", forget)


async def record_batch(
    items: Sequence[dict[str, Any]], principal: Principal, settings: Settings
) -> BatchResult:
    limit = settings.learning_events_batch_max
    if len(items) > limit:
        raise ValidationFailed.one(
            "body.events",
            f"at most {limit} events per batch (got {len(items)}); split it into smaller batches",
            type="too_long",
        )
    if not items:
        raise ValidationFailed.one(
            "body.events", "at least one event is required", type="too_short"
        )
    await validation.refresh()

    results: dict[int, BatchItemResult] = {}
    parsed: dict[int, LearningEventCreate] = {}
    for index, raw in enumerate(items):
        prefix = f"body.events.{index}"
        try:
            data = LearningEventCreate.model_validate(raw)
            authorize(principal, data.user_id)
        except ValidationError as exc:
            errors = validation_errors(exc.errors())
            for err in errors:
                err.field = f"{prefix}.{err.field}" if err.field else prefix
            results[index] = _rejected(index, "validation-failed", errors=errors)
            continue
        except AppError as exc:
            results[index] = _rejected(index, exc.code, reason=exc.detail, errors=exc.errors)
            continue
        parsed[index] = data

    lookups = await _Lookups.load(list(parsed.values()))
    to_insert: list[tuple[int, LearningEvent]] = []
    for index, data in parsed.items():
        try:
            to_insert.append((index, build_event(data, lookups, prefix=f"body.events.{index}")))
        except AppError as exc:
            results[index] = _rejected(index, exc.code, reason=exc.detail, errors=exc.errors)

    if to_insert:
        for _, event in to_insert:
            event.id = PydanticObjectId()
        _forget_unless_answered([event.id for _, event in to_insert if event.id is not None])
        failed: dict[int, str] = {}
        try:
            await LearningEvent.insert_many([event for _, event in to_insert], ordered=False)
        except BulkWriteError as exc:  # the others are stored (ordered=False)
            for err in exc.details.get("writeErrors", []):
                failed[int(err["index"])] = str(err.get("errmsg", "could not be stored"))
        for position, (index, event) in enumerate(to_insert):
            if position in failed:
                results[index] = _rejected(index, "event-not-stored", reason=failed[position])
            else:
                results[index] = BatchItemResult(index=index, status="accepted", id=str(event.id))

    ordered = [results[i] for i in range(len(items))]
    accepted = sum(1 for r in ordered if r.status == "accepted")
    return BatchResult(accepted=accepted, rejected=len(ordered) - accepted, results=ordered)


def _rejected(
    index: int,
    code: str,
    *,
    reason: str | None = None,
    errors: Sequence[FieldError] | None = None,
) -> BatchItemResult:
    if reason is None:
        reason = "; ".join(f"{e.field}: {e.message}" for e in errors or []) or code
    return BatchItemResult(
        index=index,
        status="rejected",
        code=code,
        reason=reason,
        errors=list(errors) if errors else None,
    )
