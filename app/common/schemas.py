"""Base classes for HTTP schemas: camelCase JSON, strict about unknown fields on input."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

T = TypeVar("T")


def listed(values: Iterable[str]) -> WithJsonSchema:
    """The JSON Schema of a string a response carries from a known set (an enum's values): a
    generated client can switch over them, and a value stored before the set changed still
    reads."""
    return WithJsonSchema({"type": "string", "enum": [str(v) for v in values]})


class ApiModel(BaseModel):
    """Response model: camelCase in JSON, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class ApiInput(BaseModel):
    """Request model: camelCase in JSON, unknown fields refused so typos are not silently lost."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Page(ApiModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; absent on the last page"
    )
    total: int | None = Field(
        default=None,
        description="How many items match the filters (all pages), counted when that is cheap "
        "(at most 10,000 items, within 250 ms on the server); null otherwise",
    )
    total_at_least: int | None = Field(
        default=None,
        description="A lower bound of the matching items: `total` when it is known, else the "
        "count limit or the items read up to the end of this page, whichever is larger "
        '(e.g. "1–20 of 10,000+")',
    )


def encode_cursor(values: dict[str, Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Decodes an opaque cursor; raises ValueError when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except Exception as exc:  # any garbage is the caller's mistake
        raise ValueError("not a valid cursor") from exc
    if not isinstance(value, dict):
        raise ValueError("not a valid cursor")
    return value
