"""Keyset pagination, newest first, on (created_at, _id): the one way every list endpoint of
jobs, templates, schedules and schedule runs pages. A cursor is an opaque position, never an
offset, so pages stay stable while new items arrive."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TypeVar

from beanie import Document, PydanticObjectId
from bson.errors import InvalidId

from app.common.schemas import decode_cursor, encode_cursor
from app.errors import ValidationFailed

Position = tuple[datetime, PydanticObjectId]


class Positioned(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> PydanticObjectId | None: ...


Item = TypeVar("Item", bound=Positioned)
Doc = TypeVar("Doc", bound=Document)


def decode_position(cursor: str | None, *, field: str) -> Position | None:
    """The (created_at, id) of the last item of the previous page; a 422 naming `field` when the
    cursor is not one of ours."""
    if not cursor:
        return None
    try:
        raw = decode_cursor(cursor)
        return datetime.fromisoformat(raw["c"]), PydanticObjectId(raw["i"])
    except (ValueError, KeyError, TypeError, InvalidId) as exc:
        raise ValidationFailed.one(field, "not a valid cursor") from exc


def after(query: dict[str, Any], position: Position | None) -> dict[str, Any]:
    """`query` narrowed to the items after `position` in newest-first order."""
    if position is None:
        return query
    created, last_id = position
    return {
        "$and": [
            query,
            {
                "$or": [
                    {"created_at": {"$lt": created}},
                    {"created_at": created, "_id": {"$lt": last_id}},
                ]
            },
        ]
    }


def next_page(items: list[Item], limit: int) -> tuple[list[Item], str | None]:
    """`items` were fetched with `limit + 1`: the page, and the cursor to the next one (None on
    the last page)."""
    if len(items) <= limit:
        return items, None
    items = items[:limit]
    last = items[-1]
    return items, encode_cursor({"c": last.created_at.isoformat(), "i": str(last.id)})


async def newest_first(
    document: type[Doc], query: dict[str, Any], *, limit: int, position: Position | None
) -> tuple[list[Doc], str | None]:
    """One page of `document` matching `query`, newest first, after `position`; and the
    cursor to the next page."""
    items = (
        await document.find(after(query, position))
        .sort("-created_at", "-_id")
        .limit(limit + 1)
        .to_list()
    )
    return next_page(items, limit)
