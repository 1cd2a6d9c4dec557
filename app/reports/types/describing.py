"""A file's Parameters block: the resolved parameters as the (label, value) pairs people read.

Stored parameters name departments, courses and learners by id; a file for people names them
(`names_for` reads the names, `describe` prints them). Without names (CSV and JSON, which carry
no Parameters block, and the stored form the tests pin) the ids are printed as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from beanie import Document

from app.i18n import N_, _, current_formats
from app.platform.models import Course, Department, User
from app.reports.dates import PRESET_LABELS, DatePreset
from app.reports.reading.query import object_ids
from app.reports.rendering.base import ParameterValue
from app.reports.rendering.present import NO, YES
from app.security import DataScope

# Names listed at most in one parameter; the rest are counted ("… and 12 more").
MAX_NAMES = 20
ALL_IN_SCOPE = N_("All in scope")
_PRESETS = {p.value for p in DatePreset}
# (stored key, label, what an id that no longer exists is called)
_ID_FILTERS = (
    ("departmentIds", N_("Departments"), N_("a department that no longer exists")),
    ("courseIds", N_("Courses"), N_("a course that no longer exists")),
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
    through `labelled`). With `names`, ids are printed as names and days and counts in the
    current locale's formats; without them (the stored form: JSON Lines, previews) days stay
    ISO 8601. Words are in the current locale (`app.i18n.use_locale`) either way."""
    pairs: list[tuple[str, ParameterValue]] = []
    date_range = resolved.get("dateRange")
    if date_range:
        preset = date_range.get("preset", "custom")
        label = PRESET_LABELS.get(DatePreset(preset), preset) if preset in _PRESETS else preset
        # For people (with names) the days as the locale writes them; the stored form keeps ISO.
        first, last = date_range["from"], date_range["to"]
        if names is not None:
            first, last = _human_day(first), _human_day(last)
        pairs.append((_("Date range"), f"{first} – {last} ({_(label)})"))
    # The timezone is not repeated here: every file states it on its own.
    for key, label, missing in _ID_FILTERS:
        if key in resolved:
            pairs.append((_(label), _describe_ids(resolved.get(key), names, missing)))
        if key == "departmentIds" and "includeSubDepartments" in resolved:
            sub = resolved["includeSubDepartments"]
            pairs.append((_("Include sub-departments"), _(YES) if sub is not False else _(NO)))
    if learner is not None:
        learner_name = (names or {}).get(learner)
        unknown = learner if names is None else _("(unknown)")
        pairs.append((_("Learner"), learner_name or unknown))
    for key, label in option_labels.items():
        if key in resolved:
            pairs.append((_(label), _describe_value(labelled(key, resolved[key]))))
    return pairs


def _describe_ids(ids: Sequence[str] | None, names: Mapping[str, str] | None, missing: str) -> str:
    if ids is None:
        return _(ALL_IN_SCOPE)
    if names is None:  # the stored form: ids
        if len(ids) <= 5:
            return ", ".join(ids)
        return _("{count} selected").format(count=len(ids))
    count = current_formats().integer
    shown = [names.get(i) or f"({_(missing)})" for i in ids]
    listed = sorted(shown[:MAX_NAMES], key=str.casefold) if len(shown) <= MAX_NAMES else None
    if listed is not None:
        return ", ".join(listed)
    first = sorted(shown, key=str.casefold)[:MAX_NAMES]
    return _("{names} … and {more} more ({count} in all)").format(
        names=", ".join(first), more=count(len(shown) - MAX_NAMES), count=count(len(shown))
    )


def _describe_value(value: Any) -> ParameterValue:
    if value is None:
        return _("All")
    if isinstance(value, bool):
        return _(YES) if value else _(NO)
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or _("All")
    return str(value)


def _human_day(value: Any) -> str:
    """A stored local day (`2026-07-01`) as the current locale writes it."""
    try:
        return current_formats().date(date.fromisoformat(str(value)))
    except ValueError:
        return str(value)
