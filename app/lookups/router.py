"""`PATCH /api/v1/reports/metadata/lookups/{category}/{code}`: change a lookup value (admins)."""

from __future__ import annotations

from fastapi import APIRouter

from app.errors import problem_responses
from app.lookups import service
from app.lookups.schemas import LookupValueOut
from app.lookups.service import LookupUpdate
from app.security import CurrentPrincipal

router = APIRouter(prefix="/api/v1/reports/metadata/lookups", tags=["report-metadata"])


@router.patch(
    "/{category}/{code}",
    name="lookups_update",
    summary="Relabel a lookup value or switch it off / on for new data (admins)",
    description=(
        "Every process honours the change within `LOOKUP_REFRESH_SECONDS`. Structural codes "
        "(every report-status, the `custom` date-range preset) may not be deactivated: 409."
    ),
    response_model=LookupValueOut,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def update_lookup(
    category: str, code: str, body: LookupUpdate, principal: CurrentPrincipal
) -> LookupValueOut:
    value = await service.update_lookup(principal, category, code, body)
    return LookupValueOut.model_validate(value)
