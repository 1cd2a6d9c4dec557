"""Filter options: the departments, courses and people a caller may filter reports on, within
its data scope, narrowed by what the report form already holds (cascading pickers).

What a caller may see (`View`): admins everything; managers their departments with the
sub-departments, the courses owned by or taken in them, their people; instructors their courses,
the departments and people taking them; learners themselves, their departments and courses.

What a request narrows by (`Narrowing`), checked against the scope as a report's parameters are
(a 403 naming the ids outside it):

- `departmentIds` (with their sub-departments unless `includeSubDepartments=false`, the rule of
  every report type): departments are those; courses are those with enrollments in them that
  the caller may see; people are those whose department is one of them.
- `courseIds`: departments are those with enrollments in the courses; people are those enrolled
  in one of them (in the chosen departments, when both are given).
- `parentId` (departments): the departments directly beneath one in the caller's tree, or at
  its top (`root`).

The enrollments behind the narrowing are read from the keys of two enrollment indexes
((department_id, course_id) and (course_id, department_id, user_id)); the answer is one page in
the requested order, as every list (`app/common/pagination.py`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId

from app.common.pagination import Listed, PageRequest, Sorting, paginate_raw, within
from app.config import Settings
from app.errors import ValidationFailed
from app.platform.models import (
    COURSE_SORTS,
    DEPARTMENT_SORTS,
    USER_SORTS,
    Course,
    Department,
    Enrollment,
    User,
)
from app.platform.repository import department_with_descendants
from app.reports.metadata.department_options import department_options
from app.reports.metadata.schemas import FilterKind, FilterOption
from app.security import DataScope, Principal, resolve_scope

SORTINGS: dict[FilterKind, Sorting] = {
    FilterKind.DEPARTMENTS: DEPARTMENT_SORTS,
    FilterKind.COURSES: COURSE_SORTS,
    FilterKind.USERS: USER_SORTS,
}
MODELS = {FilterKind.DEPARTMENTS: Department, FilterKind.COURSES: Course, FilterKind.USERS: User}
SEARCH_FIELDS = {
    FilterKind.DEPARTMENTS: ("name", "code"),
    FilterKind.COURSES: ("code", "title"),
    FilterKind.USERS: ("name", "email"),
}
ROOT = "root"


@dataclass(frozen=True)
class OptionFilters:
    q: str | None = None
    department_ids: list[str] | None = None
    include_sub_departments: bool = True
    course_ids: list[str] | None = None
    parent_id: str | None = None


def oids(ids: Iterable[Any]) -> list[ObjectId]:
    return [ObjectId(str(i)) for i in ids if i is not None and ObjectId.is_valid(str(i))]


def both(*clauses: dict[str, Any]) -> dict[str, Any]:
    """All of `clauses`, as one flat filter where they merge (`pagination.within`)."""
    return functools.reduce(within, clauses, {})


async def distinct(field: str, query: dict[str, Any]) -> list[ObjectId]:
    return oids(await Enrollment.get_pymongo_collection().distinct(field, query))


@dataclass
class View:
    """What a caller may see, as queries: its enrollments, and the documents of each kind."""

    principal: Principal
    scope: DataScope
    _departments: set[ObjectId] | None = field(default=None, init=False)

    def enrollments(self) -> dict[str, Any]:
        scope = self.scope
        if scope.unrestricted:
            return {}
        if scope.user_id is not None:
            return {"user_id": {"$in": oids([scope.user_id])}}
        if scope.department_ids is not None:
            return {"department_id": {"$in": oids(scope.department_ids)}}
        return {"course_id": {"$in": oids(scope.course_ids or ())}}

    async def departments(self) -> set[ObjectId] | None:
        """The departments it may see; None: all of them."""
        scope = self.scope
        if scope.unrestricted:
            return None
        if self._departments is None:
            if scope.user_id is not None:
                self._departments = set(oids(self.principal.department_ids))
            elif scope.department_ids is not None:
                self._departments = set(oids(scope.department_ids))
            else:  # an instructor: where its courses are taken
                self._departments = set(await distinct("department_id", self.enrollments()))
        return self._departments

    async def of(self, kind: FilterKind) -> dict[str, Any]:
        """The documents of `kind` it may see ({}: all)."""
        scope = self.scope
        if scope.unrestricted:
            return {}
        if kind == FilterKind.DEPARTMENTS:
            return {"_id": {"$in": sorted(await self.departments() or ())}}
        if kind == FilterKind.USERS:
            if scope.department_ids is not None:
                return {"department_id": {"$in": oids(scope.department_ids)}}
            if scope.user_id is not None:
                return {"_id": {"$in": oids([scope.user_id])}}
            return {"_id": {"$in": await distinct("user_id", self.enrollments())}}
        if scope.course_ids is not None:
            return {"_id": {"$in": oids(scope.course_ids)}}
        taken = {"_id": {"$in": await distinct("course_id", self.enrollments())}}
        if scope.department_ids is not None:  # and the courses its departments own
            return {"$or": [{"department_id": {"$in": oids(scope.department_ids)}}, taken]}
        return taken


@dataclass(frozen=True)
class Narrowing:
    """The departments (their subtrees included) and courses a request narrows by."""

    departments: list[ObjectId] | None
    courses: list[ObjectId] | None

    def enrollments(self, view: View) -> dict[str, Any]:
        """The enrollments it may see in the chosen departments and courses."""
        return both(
            view.enrollments(),
            {"department_id": {"$in": self.departments}} if self.departments is not None else {},
            {"course_id": {"$in": self.courses}} if self.courses is not None else {},
        )

    async def of(self, kind: FilterKind, view: View) -> dict[str, Any]:
        clauses: list[dict[str, Any]] = []
        if kind == FilterKind.DEPARTMENTS:
            if self.departments is not None:
                clauses.append({"_id": {"$in": self.departments}})
            if self.courses is not None:
                chosen = await distinct("department_id", self.enrollments(view))
                clauses.append({"_id": {"$in": chosen}})
        elif kind == FilterKind.COURSES:
            if self.departments is not None:
                taken = await distinct("course_id", self.enrollments(view))
                clauses.append({"_id": {"$in": taken}})
        else:
            if self.departments is not None:
                clauses.append({"department_id": {"$in": self.departments}})
            if self.courses is not None:
                enrolled = await distinct("user_id", self.enrollments(view))
                clauses.append({"_id": {"$in": enrolled}})
        return both(*clauses)


def _ids(values: list[str] | None, field: str, settings: Settings) -> list[str] | None:
    """Ids given repeated or comma-separated; a 422 naming `field` for one that is not an id or
    for more than `MAX_FILTER_IDS`."""
    if values is None:
        return None
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    bad = [i for i in ids if not ObjectId.is_valid(i)]
    if bad:
        raise ValidationFailed.one(field, f"not ids: {', '.join(bad[:5])}", type="id-invalid")
    if len(ids) > settings.max_filter_ids:
        raise ValidationFailed.one(
            field, f"at most {settings.max_filter_ids} ids", type="too-many-ids"
        )
    return ids


def _check_kind(kind: FilterKind, filters: OptionFilters) -> None:
    if filters.course_ids is not None and kind == FilterKind.COURSES:
        raise ValidationFailed.one(
            "query.courseIds", "narrows departments and users, not courses", type="not-allowed"
        )
    if filters.parent_id is not None and kind != FilterKind.DEPARTMENTS:
        raise ValidationFailed.one(
            "query.parentId", "lists sub-departments: only with departments", type="not-allowed"
        )
    parent = filters.parent_id
    if parent is not None and parent != ROOT and not ObjectId.is_valid(parent):
        raise ValidationFailed.one(
            "query.parentId", f"a department id or {ROOT!r}", type="id-invalid"
        )


async def narrowing(settings: Settings, scope: DataScope, filters: OptionFilters) -> Narrowing:
    """The request's departments and courses, checked against the scope (403 naming ids
    outside it); the departments with their subtrees unless asked otherwise."""
    departments = _ids(filters.department_ids, "query.departmentIds", settings)
    courses = _ids(filters.course_ids, "query.courseIds", settings)
    named = scope.narrow("departmentIds", departments) if departments is not None else None
    if named is not None and filters.include_sub_departments:
        named = await department_with_descendants(named)
    allowed = scope.narrow("courseIds", courses) if courses is not None else None
    return Narrowing(
        departments=oids(sorted(named)) if named is not None else None,
        courses=oids(sorted(allowed)) if allowed is not None else None,
    )


async def filter_options(
    settings: Settings,
    principal: Principal,
    kind: FilterKind,
    filters: OptionFilters,
    *,
    sort: str | None,
    cursor: str | None,
    limit: int,
) -> Listed[FilterOption]:
    page: PageRequest = SORTINGS[kind].request(sort, cursor, limit)
    _check_kind(kind, filters)
    scope = await resolve_scope(principal)
    view = View(principal, scope)
    narrow = await narrowing(settings, scope, filters)
    clauses = [await view.of(kind), await narrow.of(kind, view)]
    if kind == FilterKind.USERS:
        clauses.append({"status": "active"})
    if filters.q:
        pattern = {"$regex": re.escape(filters.q), "$options": "i"}
        clauses.append({"$or": [{f: pattern} for f in SEARCH_FIELDS[kind]]})
    visible = await view.departments() if kind == FilterKind.DEPARTMENTS else None
    if filters.parent_id is not None:
        parent = None if filters.parent_id == ROOT else ObjectId(filters.parent_id)
        clauses.append(await _beneath(parent, visible))
    collection = MODELS[kind].get_pymongo_collection()
    listed = await paginate_raw(collection, both(*clauses), page)
    if kind == FilterKind.DEPARTMENTS:
        options = await department_options(
            listed.items,
            visible=visible,
            people=both(await view.of(FilterKind.USERS), {"status": "active"}),
            enrollments=narrow.enrollments(view),
        )
    else:
        options = [_option(kind, d) for d in listed.items]
    return Listed(options, listed.next_cursor, listed.total, listed.total_at_least)


async def _beneath(parent: ObjectId | None, visible: set[ObjectId] | None) -> dict[str, Any]:
    """The departments whose nearest visible department above is `parent` (None: those with
    none, the top of the caller's tree)."""
    if visible is None:
        return {"parent_id": parent}
    found = Department.get_pymongo_collection().find(
        {"_id": {"$in": sorted(visible)}}, {"ancestor_ids": 1}
    )
    ids = []
    async for doc in found:
        above = [a for a in doc.get("ancestor_ids") or () if a in visible]
        if (above[-1] if above else None) == parent:
            ids.append(doc["_id"])
    return {"_id": {"$in": ids}}


def _option(kind: FilterKind, doc: dict[str, Any]) -> FilterOption:
    if kind == FilterKind.COURSES:
        return FilterOption(
            id=str(doc["_id"]),
            label=f"{doc['code']} — {doc['title']}",
            description=doc.get("category"),
        )
    return FilterOption(id=str(doc["_id"]), label=doc["name"], description=doc.get("email"))
