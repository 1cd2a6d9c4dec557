"""Ids in URLs: a string that is not an ObjectId names nothing, so it is a 404, not a 422."""

from __future__ import annotations

from beanie import PydanticObjectId
from bson import ObjectId

from app.errors import NotFound


def parse_id(value: str, what: str, *, code: str | None = None) -> PydanticObjectId:
    """`value` as an ObjectId, or 404 `No <what> with id ...` (with `code` when given)."""
    if not ObjectId.is_valid(value):
        raise NotFound(f"No {what} with id {value!r}.", code=code)
    return PydanticObjectId(value)
