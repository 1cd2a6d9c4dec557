"""The one place that answers "is this code valid for this category?" (API-ISS-029).

Validators in Pydantic models are synchronous, so they read an in-memory snapshot of the
lookup table. The snapshot starts from the built-in catalogue, is loaded from MongoDB at start-up
and refreshed when it is older than `REFRESH_SECONDS` (or at once after a change in this
process), so every process converges on the stored values without having to agree in memory.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from app.lookups.catalog import CATEGORIES

REFRESH_SECONDS = 30.0
KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class _Entry:
    label: str
    is_active: bool


class _Snapshot:
    def __init__(self) -> None:
        self.values: dict[str, dict[str, _Entry]] = {
            category: {code: _Entry(label, True) for code, label, _d, _m in spec["values"]}
            for category, spec in CATEGORIES.items()
        }
        self.loaded_at = 0.0

    def stale(self) -> bool:
        return time.monotonic() - self.loaded_at > REFRESH_SECONDS


_snapshot = _Snapshot()


def invalidate() -> None:
    _snapshot.loaded_at = 0.0


async def refresh(force: bool = False) -> None:
    """Reloads the snapshot from MongoDB when stale (cheap: one small indexed read)."""
    if not force and not _snapshot.stale():
        return
    from app.lookups.models import LookupValue

    values: dict[str, dict[str, _Entry]] = {}
    cursor = LookupValue.get_pymongo_collection().find(
        {}, {"category": 1, "code": 1, "label": 1, "is_active": 1}
    )
    async for doc in cursor:
        values.setdefault(doc["category"], {})[doc["code"]] = _Entry(
            doc.get("label", doc["code"]), bool(doc.get("is_active", True))
        )
    if values:
        _snapshot.values = values
    _snapshot.loaded_at = time.monotonic()


def allowed_codes(category: str, *, include_inactive: bool = False) -> list[str]:
    entries = _snapshot.values.get(category, {})
    return [code for code, entry in entries.items() if include_inactive or entry.is_active]


def is_valid(category: str, code: str, *, include_inactive: bool = False) -> bool:
    entry = _snapshot.values.get(category, {}).get(code)
    return entry is not None and (include_inactive or entry.is_active)


def suggest_kebab(value: str) -> str:
    """`COURSE_COMPLETED`, `courseCompleted`, `course_completed` -> `course-completed`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", value.strip())
    return re.sub(r"[\s_]+", "-", spaced).lower().strip("-")


def check_code(category: str, value: Any, *, include_inactive: bool = False) -> str:
    """Returns the code or raises a Pydantic error naming the bad value and the allowed codes."""
    allowed = allowed_codes(category)
    if not isinstance(value, str):
        raise PydanticCustomError(
            "lookup_code",
            "must be one of the {category} codes: {allowed_text}",
            {"category": category, "allowed": allowed, "allowed_text": ", ".join(allowed)},
        )
    if is_valid(category, value, include_inactive=include_inactive):
        return value
    suggestion = suggest_kebab(value)
    if suggestion != value and is_valid(category, suggestion):
        raise PydanticCustomError(
            "lookup_code_spelling",
            "'{value}' is not a {category} code; use the kebab-case code '{suggestion}'",
            {"value": value, "category": category, "suggestion": suggestion, "allowed": allowed},
        )
    if is_valid(category, value, include_inactive=True):
        raise PydanticCustomError(
            "lookup_code_inactive",
            "'{value}' is no longer active in {category}; allowed: {allowed_text}",
            {
                "value": value,
                "category": category,
                "allowed": allowed,
                "allowed_text": ", ".join(allowed),
            },
        )
    raise PydanticCustomError(
        "lookup_code",
        "'{value}' is not a {category} code; allowed: {allowed_text}",
        {
            "value": value,
            "category": category,
            "allowed": allowed,
            "allowed_text": ", ".join(allowed),
        },
    )


def LookupCode(category: str) -> Any:
    """`Annotated[str, ...]` validated against a lookup category (active codes only), with the
    allowed codes in its JSON Schema."""
    codes = allowed_codes(category)
    return Annotated[
        str,
        AfterValidator(lambda v: check_code(category, v)),
        WithJsonSchema({"type": "string", "enum": codes, "x-lookup-category": category}),
    ]


def validate_kebab(value: str) -> bool:
    return bool(KEBAB.match(value))
