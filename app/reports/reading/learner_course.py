"""Who and what a per-record row is about: the learner, the course and the department of an
enrollment (learner-progress, compliance-status) or of a quiz submission (assessment-results).

The same three joins, the same five cells and the same name order serve every such report; a
report that needs more of the course (assessment-results: its passing score) names the extra
fields and reads them with `course`.
"""

from __future__ import annotations

from typing import Any

from app.reports.reading.ordering import name_key
from app.reports.reading.query import COURSES, DEPARTMENTS, USERS, Dimensions, Join

_NO_USER: tuple[Any, ...] = (None, None)
_NO_DEPARTMENT: tuple[Any, ...] = (None,)


class LearnerCourse:
    """The joins of a fact's learner (users: name, email), course (courses: code, title, then
    `course_extra`) and department (departments: name), in this order, and what a row takes
    from them."""

    def __init__(self, *course_extra: str) -> None:
        self.joins: tuple[Join, ...] = (
            Join("user_id", USERS, ("name", "email")),
            Join("course_id", COURSES, ("code", "title", *course_extra)),
            Join("department_id", DEPARTMENTS, ("name",)),
        )
        self._no_course: tuple[Any, ...] = (None,) * (2 + len(course_extra))

    def cells(self, doc: dict[str, Any], dims: Dimensions) -> tuple[Any, ...]:
        """Learner name and email, department, course code and title (a missing document
        gives empty cells, as `$lookup` + `$unwind` kept them)."""
        users, courses, departments = dims
        name, email = users.get(doc.get("user_id")) or _NO_USER
        course = courses.get(doc.get("course_id")) or self._no_course
        (department,) = departments.get(doc.get("department_id")) or _NO_DEPARTMENT
        return (name, email, department, course[0], course[1])

    def course(self, doc: dict[str, Any], dims: Dimensions) -> tuple[Any, ...]:
        """The fact's course fields: code, title, then the `course_extra` ones (all None for a
        course that is missing)."""
        return dims[1].get(doc.get("course_id")) or self._no_course

    def order(self, doc: dict[str, Any], dims: Dimensions) -> tuple[Any, ...]:
        """Department, learner and course names under the name collation, then the record's
        `_id` (what `$sort` gave under NAME_COLLATION)."""
        users, courses, departments = dims
        return (
            name_key((departments.get(doc.get("department_id")) or _NO_DEPARTMENT)[0]),
            name_key((users.get(doc.get("user_id")) or _NO_USER)[0]),
            name_key((courses.get(doc.get("course_id")) or self._no_course)[0]),
            doc["_id"],
        )


# An enrollment's learner and course, for the reports that need no more of them.
LEARNER_COURSE = LearnerCourse()
