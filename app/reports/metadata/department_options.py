"""Department filter options as the tree the caller sees, with counts.

A department's place is taken among the departments the caller may see: its `parentId` is the
nearest of its ancestors the caller may see (a manager never learns the ids above the
departments it manages; an instructor's departments, those its courses are taken in, may skip
levels), its `level` the number of those, its `childCount` the visible departments whose
nearest visible ancestor it is. Its counts are its own (not its sub-departments'), within the
caller's view, each a bounded count (`app/common/pagination.bounded_count`): the active people
whose department it is, and the enrollments in it (in the chosen courses, if any)."""

from __future__ import annotations

import asyncio
from typing import Any

from bson import ObjectId

from app.common.pagination import bounded_count, within
from app.platform.models import Department, Enrollment, User
from app.reports.metadata.schemas import FilterOption


def place(doc: dict[str, Any], visible: set[ObjectId] | None) -> tuple[ObjectId | None, int]:
    """(the nearest department above `doc` that is visible, how many above it are); all are
    visible when `visible` is None."""
    ancestors = list(doc.get("ancestor_ids") or ())
    if visible is None:
        return doc.get("parent_id"), len(ancestors)
    above = [a for a in ancestors if a in visible]
    return (above[-1] if above else None), len(above)


async def child_counts(ids: list[ObjectId], visible: set[ObjectId] | None) -> dict[ObjectId, int]:
    """How many visible departments sit directly beneath each of `ids` in the caller's tree."""
    counts = dict.fromkeys(ids, 0)
    collection = Department.get_pymongo_collection()
    if visible is None:
        query: dict[str, Any] = {"parent_id": {"$in": ids}}
    else:
        query = {"_id": {"$in": sorted(visible)}, "ancestor_ids": {"$in": ids}}
    async for doc in collection.find(query, {"parent_id": 1, "ancestor_ids": 1}):
        parent, _ = place(doc, visible)
        if parent in counts:
            counts[parent] += 1
    return counts


async def department_options(
    docs: list[dict[str, Any]],
    *,
    visible: set[ObjectId] | None,
    people: dict[str, Any],
    enrollments: dict[str, Any],
) -> list[FilterOption]:
    """The options of a page of departments. `people` and `enrollments` are the users and
    enrollments the caller may see (and has chosen)."""
    ids = [d["_id"] for d in docs]
    users, facts = User.get_pymongo_collection(), Enrollment.get_pymongo_collection()
    counting = asyncio.gather(
        *(bounded_count(users, within(people, {"department_id": i})) for i in ids),
        *(bounded_count(facts, within(enrollments, {"department_id": i})) for i in ids),
    )
    children, counted = await asyncio.gather(child_counts(ids, visible), counting)
    learners, enrolled = counted[: len(ids)], counted[len(ids) :]
    options = []
    for doc, (learner_count, learners_at_least), (enrollment_count, enrolled_at_least) in zip(
        docs, learners, enrolled, strict=True
    ):
        parent, level = place(doc, visible)
        options.append(
            FilterOption(
                id=str(doc["_id"]),
                label=doc["name"],
                description=doc.get("code"),
                parent_id=str(parent) if parent is not None else None,
                level=level,
                child_count=children[doc["_id"]],
                learner_count=learner_count,
                learner_count_at_least=learners_at_least,
                enrollment_count=enrollment_count,
                enrollment_count_at_least=enrolled_at_least,
            )
        )
    return options
