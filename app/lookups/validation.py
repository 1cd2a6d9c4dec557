"""The one place that answers "is this code valid for this category?" (API-ISS-029).

Validators in Pydantic models are synchronous, so they read an in-memory snapshot of the
lookup table. The snapshot starts from the built-in catalogue, is loaded from MongoDB at start-up
and reloaded every `LOOKUP_REFRESH_SECONDS` by `kept_fresh` (the API's lifespan and the worker
run it), and at once after a change made through this process: a code switched off in the
table, by the API or directly in the database, is refused everywhere within that interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from app.i18n import DEFAULT_LOCALE, translate
from app.lookups import catalog
from app.lookups.catalog import CATEGORIES, category_values
from app.lookups.models import LookupValue

REFRESH_SECONDS = 30.0
"""How old the snapshot may be before `refresh()` reloads it (`kept_fresh` sets its interval)."""

log = structlog.get_logger(__name__)
KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class _Entry:
    label: str
    is_active: bool
    labels: tuple[tuple[str, str], ...] = ()  # (locale, label) besides the default one

    def in_locale(self, locale: str) -> str:
        """The label in `locale`: stored for it, else the default label translated."""
        if locale == DEFAULT_LOCALE:
            return self.label
        return dict(self.labels).get(locale) or translate(locale, self.label)


def builtin_values() -> dict[str, dict[str, _Entry]]:
    """The built-in catalogue, every code active (read when asked: supplied categories such as
    the report types may gain codes after this module is imported)."""
    return {
        category: {code: _Entry(label, True) for code, label, _d, _m in category_values(category)}
        for category in CATEGORIES
    }


class _Snapshot:
    def __init__(self) -> None:
        self.stored: dict[str, dict[str, _Entry]] | None = None  # None: not loaded yet
        self.loaded_at = 0.0
        self.max_age = REFRESH_SECONDS
        self._builtin: tuple[int, dict[str, dict[str, _Entry]]] | None = None

    @property
    def values(self) -> dict[str, dict[str, _Entry]]:
        if self.stored is not None:
            return self.stored
        if self._builtin is None or self._builtin[0] != catalog.generation:
            self._builtin = (catalog.generation, builtin_values())
        return self._builtin[1]

    def stale(self) -> bool:
        return time.monotonic() - self.loaded_at > self.max_age


_snapshot = _Snapshot()


def invalidate() -> None:
    _snapshot.loaded_at = 0.0


async def refresh(force: bool = False) -> None:
    """Reloads the snapshot from MongoDB when stale (cheap: one small indexed read)."""
    if not force and not _snapshot.stale():
        return
    values: dict[str, dict[str, _Entry]] = {}
    cursor = LookupValue.get_pymongo_collection().find(
        {}, {"category": 1, "code": 1, "label": 1, "labels": 1, "is_active": 1}
    )
    async for doc in cursor:
        stored = doc.get("labels")
        values.setdefault(doc["category"], {})[doc["code"]] = _Entry(
            doc.get("label", doc["code"]),
            bool(doc.get("is_active", True)),
            tuple(sorted(stored.items())) if isinstance(stored, dict) else (),
        )
    if values:
        _snapshot.stored = values
    _snapshot.loaded_at = time.monotonic()


async def _refresh_every(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await refresh(force=True)
        except Exception as exc:  # database away: keep the last snapshot, try again later
            log.warning("lookup_refresh_failed", error=str(exc)[:200])


@asynccontextmanager
async def kept_fresh(interval: float) -> AsyncIterator[None]:
    """Loads the snapshot now and reloads it every `interval` seconds while the block runs
    (several blocks in one process each keep it fresh; the snapshot is shared)."""
    _snapshot.max_age = min(_snapshot.max_age, interval)
    with contextlib.suppress(Exception):  # start-up checks already proved the database is up
        await refresh(force=True)
    task = asyncio.create_task(_refresh_every(interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def allowed_codes(category: str, *, include_inactive: bool = False) -> list[str]:
    entries = _snapshot.values.get(category, {})
    return [code for code, entry in entries.items() if include_inactive or entry.is_active]


def is_valid(category: str, code: str, *, include_inactive: bool = False) -> bool:
    entry = _snapshot.values.get(category, {}).get(code)
    return entry is not None and (include_inactive or entry.is_active)


def label_of(category: str, code: str, locale: str = DEFAULT_LOCALE) -> str | None:
    entry = _snapshot.values.get(category, {}).get(code)
    return entry.in_locale(locale) if entry else None


def labels(category: str, locale: str = DEFAULT_LOCALE) -> dict[str, str]:
    """Code -> label of a category in `locale` (inactive codes too: old rows still print their
    label); the stored labels over the built-in ones (translated by the message catalog)."""
    builtin = {code: translate(locale, label) for code, label, _d, _m in category_values(category)}
    stored = _snapshot.values.get(category, {})
    return {**builtin, **{code: entry.in_locale(locale) for code, entry in stored.items()}}


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


@dataclass(frozen=True)
class _LookupSchema:
    """The JSON Schema of a lookup-code field: the built-in codes of its category, read when the
    schema is generated (so report types registered after the field was declared are listed)."""

    category: str

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        codes = [code for code, _l, _d, _m in category_values(self.category)]
        return {"type": "string", "enum": codes, "x-lookup-category": self.category}


def LookupCode(category: str) -> Any:
    """`Annotated[str, ...]` validated against a lookup category (active codes only), with the
    allowed codes in its JSON Schema."""
    return Annotated[
        str, AfterValidator(lambda v: check_code(category, v)), _LookupSchema(category)
    ]


def LookupCodeOut(category: str) -> Any:
    """`Annotated[str, ...]` for a code a response carries: the category's codes listed in its
    JSON Schema (so a generated client can switch over them), nothing checked (a stored code
    stays readable after it is switched off)."""
    return Annotated[str, _LookupSchema(category)]


def validate_kebab(value: str) -> bool:
    return bool(KEBAB.match(value))
