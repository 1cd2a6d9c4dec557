"""POST /api/v1/learning-events (one) and /api/v1/learning-events/batch (many)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from app.deps import SettingsDep
from app.errors import problem_responses
from app.learning_events import service
from app.learning_events.schemas import (
    BatchResult,
    LearningEventBatch,
    LearningEventCreate,
    LearningEventOut,
)
from app.lookups import validation
from app.security import CurrentPrincipal


async def fresh_lookups() -> None:
    """Runs before the body is validated, so event types are checked against current lookups."""
    await validation.refresh()


router = APIRouter(
    prefix="/api/v1/learning-events",
    tags=["learning-events"],
    dependencies=[Depends(fresh_lookups)],
)

WHO_MAY_POST = (
    "An admin may record events for any user; any other caller only for itself "
    "(`userId` must equal the token's `sub`)."
)


@router.post(
    "",
    name="learning_events_create",
    summary="Record one learning event",
    description=(
        "Stores one event. `type` must be a kebab-case `learning-event-type` code: legacy "
        "spellings such as `COURSE_COMPLETED` are a 422 naming the code to use and listing the "
        "allowed ones. The service fills `courseId`, `departmentId` (from the user) and "
        "`enrollmentId` (the user's enrollment in the course). " + WHO_MAY_POST
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=LearningEventOut,
    responses=problem_responses(401, 403, 413, 422),
)
async def create_learning_event(
    body: LearningEventCreate, principal: CurrentPrincipal
) -> LearningEventOut:
    return await service.record_event(body, principal)


@router.post(
    "/batch",
    name="learning_events_create_batch",
    summary="Record many learning events (partial success)",
    description=(
        "Up to `LEARNING_EVENTS_BATCH_MAX` events (default 500; more is a 422 naming the limit). "
        "Each item is validated and stored on its own: the 200 response reports, per index, "
        "`accepted` with the new id or `rejected` with the reason and field errors. Accepted "
        "items are stored even when others are rejected. " + WHO_MAY_POST
    ),
    response_model=BatchResult,
    responses=problem_responses(401, 413, 422),
)
async def create_learning_events_batch(
    body: LearningEventBatch, principal: CurrentPrincipal, settings: SettingsDep
) -> BatchResult:
    return await service.record_batch(body.events, principal, settings)
