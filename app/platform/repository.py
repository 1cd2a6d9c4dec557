"""Queries on the platform's data that access control needs (who manages and teaches what)."""

from __future__ import annotations

from collections.abc import Iterable

from beanie import PydanticObjectId
from bson import ObjectId

from app.platform.models import Course, Department, User


async def user_by_id(user_id: str) -> User | None:
    """The platform user `user_id` names, or None (also for an id that is not an ObjectId: it
    cannot name a user)."""
    return await User.get(PydanticObjectId(user_id)) if ObjectId.is_valid(user_id) else None


async def department_with_descendants(ids: Iterable[str]) -> frozenset[str]:
    """The given departments and all their sub-departments (ids that are not ObjectIds are
    ignored: they cannot name a department)."""
    roots = [ObjectId(i) for i in ids if ObjectId.is_valid(i)]
    if not roots:
        return frozenset()
    found = await Department.find(
        {"$or": [{"_id": {"$in": roots}}, {"ancestor_ids": {"$in": roots}}]}
    ).to_list()
    return frozenset(str(d.id) for d in found)


async def courses_taught_by(user_id: str) -> frozenset[str]:
    """Ids of the courses listing `user_id` among their instructors."""
    if not ObjectId.is_valid(user_id):
        return frozenset()
    courses = await Course.find({"instructor_ids": PydanticObjectId(user_id)}).to_list()
    return frozenset(str(c.id) for c in courses)
