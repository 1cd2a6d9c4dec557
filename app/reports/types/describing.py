"""A file's Parameters block: the resolved parameters as the (label, value) pairs people read.

Stored parameters name departments, courses and learners by id; a file for people names them
(`names_for` reads the names, `describe` prints them). Without names (CSV and JSON, which carry
no Parameters block, and the stored form the tests pin) the ids are printed as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from beanie import Document

from app.platform.models import Course, Department, User
from app.reports.dates import PRESET_LABELS, DatePreset
from app.reports.reading.query import object_ids
from app.reports.rendering.base import ParameterValue
from app.reports.rendering.present import NO, YES
from app.security import DataScope

# Names listed at most in one parameter; the rest are counted ("… and 12 more").
MAX_NAMES = 20
ALL_IN_SCOPE = "All in scope"
_PRESETS = {p.value for p in DatePreset}
# (stored key, label, what an id that no longer exists is called)
_ID_FILTERS = (
    ("departmentIds", "Departments", "a department that no longer exists"),
    ("courseIds", "Courses", "a course that no longer exists"),
)


async def names_for(resolved: Mapping[str, Any], scope: DataScope) -> dict[str, str]:
    """id -> the name people read, for the departments and courses the parameters name and the
    learner whose own report it is (one small read per collection)."""
    names: dict[str, str] = {}
    departments = resolved.get("departmentIds") or []
    courses = resolved.get("courseIds") or []
    for ids, document, fields in (
        (departments, Department, {"name": 1}),
        (courses, Course, {"title": 1, "code": 1}),
        ([scope.user_id] if scope.user_id else [], User, {"name": 1}),
    ):
        if ids:
            names.update(await _names(document, ids, fields))
    return names


async def _names(
    document: type[Document], ids: Sequence[str], fields: dict[str, int]
) -> dict[str, str]:
    cursor = document.get_pymongo_collection().find({"_id": {"$in": object_ids(ids)}}, fields)
    out: dict[str, str] = {}
    async for doc in cursor:
        if "title" in doc:  # a course: its title and code
            out[str(doc["_id"])] = f"{doc.get('title')} ({doc.get('code')})"
        else:
            out[str(doc["_id"])] = str(doc.get("name") or "")
    return out


def describe(
    resolved: Mapping[str, Any],
    option_labels: Mapping[str, str],
    labelled: Callable[[str, Any], Any],
    names: Mapping[str, str] | None = None,
    learner: str | None = None,
) -> list[tuple[str, ParameterValue]]:
    """The resolved parameters as (label, value) pairs, in stored form: the date range, the
    departments (and whether their sub-departments count), the courses, the learner of a
    learner's own report, then the type's options (`option_labels`, their codes as labels
    through `labelled`). With `names`, ids are printed as names."""
    pairs: list[tuple[str, ParameterValue]] = []
    date_range = resolved.get("dateRange")
    if date_range:
        preset = date_range.get("preset", "custom")
        label = PRESET_LABELS.get(DatePreset(preset), preset) if preset in _PRESETS else preset
        pairs.append(("Date range", f"{date_range['from']} – {date_range['to']} ({label})"))
    # The timezone is not repeated here: every file states it on its own.
    for key, label, missing in _ID_FILTERS:
        if key in resolved:
            pairs.append((label, _describe_ids(resolved.get(key), names, missing)))
        if key == "departmentIds" and "includeSubDepartments" in resolved:
            sub = resolved["includeSubDepartments"]
            pairs.append(("Include sub-departments", YES if sub is not False else NO))
    if learner is not None:
        learner_name = (names or {}).get(learner)
        pairs.append(("Learner", learner_name or (learner if names is None else "(unknown)")))
    for key, label in option_labels.items():
        if key in resolved:
            pairs.append((label, _describe_value(labelled(key, resolved[key]))))
    return pairs


def _describe_ids(ids: Sequence[str] | None, names: Mapping[str, str] | None, missing: str) -> str:
    if ids is None:
        return ALL_IN_SCOPE
    if names is None:  # the stored form: ids
        return ", ".join(ids) if len(ids) <= 5 else f"{len(ids)} selected"
    shown = [names.get(i) or f"({missing})" for i in ids]
    listed = sorted(shown[:MAX_NAMES], key=str.casefold) if len(shown) <= MAX_NAMES else None
    if listed is not None:
        return ", ".join(listed)
    first = sorted(shown, key=str.casefold)[:MAX_NAMES]
    return f"{', '.join(first)} … and {len(shown) - MAX_NAMES} more ({len(shown)} in all)"


def _describe_value(value: Any) -> ParameterValue:
    if value is None:
        return "All"
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "All"
    return str(value)
