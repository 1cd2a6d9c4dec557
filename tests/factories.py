"""Small builders for platform data: each returns the inserted document."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from beanie import PydanticObjectId

from app.learning_events.models import LearningEvent
from app.platform.models import Course, Department, Enrollment, Quiz, User

_seq = itertools.count(1)


def dt(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """dt(2026, 3, 1, 12) -> aware UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def department(
    name: str | None = None, *, code: str | None = None, parent: Department | None = None
) -> Department:
    n = next(_seq)
    doc = Department(
        name=name or f"Department {n}",
        code=code or f"D{n:04d}",
        parent_id=parent.id if parent else None,
        ancestor_ids=[*parent.ancestor_ids, parent.id] if parent and parent.id else [],
    )
    return await doc.insert()


async def user(
    name: str | None = None,
    *,
    dept: Department | None = None,
    roles: list[str] | None = None,
    status: str = "active",
    email: str | None = None,
) -> User:
    n = next(_seq)
    doc = User(
        name=name or f"User {n}",
        email=email or f"user{n}@example.test",
        department_id=dept.id if dept else None,
        roles=roles or ["learner"],
        status=status,
    )
    return await doc.insert()


async def course(
    code: str | None = None,
    *,
    title: str | None = None,
    dept: Department | None = None,
    category: str = "productivity",
    mandatory: bool = False,
    passing_score: float = 70.0,
    instructors: list[User] | None = None,
    quizzes: dict[str, str] | None = None,
) -> Course:
    n = next(_seq)
    doc = Course(
        code=code or f"C{n:04d}",
        title=title or f"Course {n}",
        category=category,
        department_id=dept.id if dept else None,
        is_mandatory=mandatory,
        passing_score=passing_score,
        instructor_ids=[i.id for i in instructors or [] if i.id],
        quizzes=[Quiz(id=k, title=v) for k, v in (quizzes or {}).items()],
    )
    return await doc.insert()


async def enrollment(
    learner: User, crs: Course, *, enrolled_at: datetime, status: str = "enrolled", **fields: Any
) -> Enrollment:
    doc = Enrollment(
        user_id=PydanticObjectId(learner.id),
        course_id=PydanticObjectId(crs.id),
        department_id=learner.department_id,
        status=status,
        enrolled_at=enrolled_at,
        **fields,
    )
    return await doc.insert()


async def event(
    type: str,
    learner: User,
    *,
    occurred_at: datetime,
    enr: Enrollment | None = None,
    payload: dict[str, Any] | None = None,
) -> LearningEvent:
    doc = LearningEvent(
        type=type,
        user_id=PydanticObjectId(learner.id),
        occurred_at=occurred_at,
        payload=payload or {},
        course_id=enr.course_id if enr else None,
        department_id=learner.department_id,
        enrollment_id=enr.id if enr else None,
    )
    return await doc.insert()
