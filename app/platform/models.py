"""The learning platform's data that reports read: departments, users, courses, enrollments.

Stored field names are snake_case; every datetime is UTC. Departments keep the ids of all their
ancestors (`ancestor_ids`) so "a department and its sub-departments" is one indexed query. A
course lists its quizzes (`quizzes`: id and title), which learning events name by id.
"""

from __future__ import annotations

from datetime import datetime

from beanie import PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.common.documents import TimestampedDocument
from app.common.pagination import SortField, Sorting, sort_indexes

# The orders of the filter options (`GET /api/v1/reports/metadata/filter-options/{kind}`).
NAME = SortField("name", "name", "string", "the name, by code point (upper case before lower)")
DEPARTMENT_SORTS = Sorting(
    (NAME, SortField("code", "code", "string", "the department code", unique=True)),
    default="name",
)
COURSE_SORTS = Sorting(
    (
        SortField("code", "code", "string", "the course code", unique=True),
        SortField("title", "title", "string", "the title, by code point"),
    ),
    default="code",
)
USER_SORTS = Sorting(
    (NAME, SortField("email", "email", "string", "the e-mail address", unique=True)),
    default="name",
)


class Department(TimestampedDocument):
    name: str
    code: str
    parent_id: PydanticObjectId | None = None
    ancestor_ids: list[PydanticObjectId] = Field(default_factory=list)

    class Settings:
        name = "departments"
        indexes = [
            IndexModel([("code", ASCENDING)], unique=True),
            IndexModel([("ancestor_ids", ASCENDING)]),
            IndexModel([("name", ASCENDING)]),
            # The options: all departments, or the children of one (`parentId`).
            *sort_indexes(DEPARTMENT_SORTS, (), ("parent_id",)),
        ]


class User(TimestampedDocument):
    name: str
    email: str
    department_id: PydanticObjectId | None = None
    roles: list[str] = Field(default_factory=lambda: ["learner"])
    status: str = "active"  # active | inactive
    # The language the user reads reports and e-mails in (a supported locale code); None: not
    # chosen (their reports and messages use the job's or the schedule's locale).
    locale: str | None = None

    class Settings:
        name = "users"
        indexes = [
            IndexModel([("email", ASCENDING)], unique=True),
            IndexModel([("department_id", ASCENDING), ("name", ASCENDING)]),
            IndexModel([("name", ASCENDING)]),
            # The options (active people): all of them, or those of some departments (one
            # range per department, merged in order); also a department's learner count.
            *sort_indexes(USER_SORTS, ("status",), ("department_id", "status")),
        ]


class Quiz(BaseModel):
    """One of a course's quizzes: the id learning events name (`payload.quizId`) and its title."""

    id: str
    title: str


class Course(TimestampedDocument):
    code: str
    title: str
    category: str  # a course-category lookup code (reports print its label)
    department_id: PydanticObjectId | None = None
    instructor_ids: list[PydanticObjectId] = Field(default_factory=list)
    is_mandatory: bool = False
    duration_minutes: int = 60
    passing_score: float = 70.0
    # The course's quizzes; a quiz's id is unique within its course only.
    quizzes: list[Quiz] = Field(default_factory=list)

    class Settings:
        name = "courses"
        indexes = [
            IndexModel([("code", ASCENDING)], unique=True),
            IndexModel([("department_id", ASCENDING)]),
            IndexModel([("instructor_ids", ASCENDING)]),
            IndexModel([("is_mandatory", ASCENDING)]),
            # The options of admins; the others' courses are an id list, read and sorted.
            *sort_indexes(COURSE_SORTS, ()),
        ]


class Enrollment(TimestampedDocument):
    user_id: PydanticObjectId
    course_id: PydanticObjectId
    department_id: PydanticObjectId | None = None
    status: str = "enrolled"  # enrollment-status lookup
    enrolled_at: datetime
    due_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    progress_percent: float = 0.0
    score: float | None = None
    time_spent_minutes: int = 0
    last_activity_at: datetime | None = None

    class Settings:
        name = "enrollments"
        indexes = [
            IndexModel([("user_id", ASCENDING), ("course_id", ASCENDING)], unique=True),
            IndexModel([("department_id", ASCENDING), ("enrolled_at", ASCENDING)]),
            IndexModel([("department_id", ASCENDING), ("completed_at", ASCENDING)]),
            IndexModel([("course_id", ASCENDING), ("enrolled_at", ASCENDING)]),
            IndexModel([("enrolled_at", ASCENDING)]),
            IndexModel([("completed_at", ASCENDING)]),
            IndexModel([("last_activity_at", DESCENDING)]),
            IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),
            IndexModel([("department_id", ASCENDING), ("due_at", ASCENDING)]),
            # Cascading filter options, read from these keys alone: the courses taken in some
            # departments, a department's enrollments; the departments and learners of some
            # courses (in some departments).
            IndexModel([("department_id", ASCENDING), ("course_id", ASCENDING)]),
            IndexModel(
                [("course_id", ASCENDING), ("department_id", ASCENDING), ("user_id", ASCENDING)]
            ),
        ]


PLATFORM_DOCUMENTS = [Department, User, Course, Enrollment]
