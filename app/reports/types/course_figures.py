"""course-completion's figures added up in the worker, one course at a time, with the
semantics of the aggregation they replace (`CourseCompletion._pipeline`): a status counts by
exact equality; a score counts when the enrollment is completed and the score is a number
(`$isNumber`: not a boolean), in millionths rounded half to even (`$round`); the days to
complete count when the enrollment is completed and both dates are dates (`$subtract`).
Rows come out ordered by course code, then course id (a missing code or course first, as the
server sorts null)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from bson import Decimal128

from app.reports.reading.query import Dimensions, Row
from app.reports.types.figures import SCALE, exact_average, rate

MS_PER_DAY = 86_400_000
_MS = timedelta(milliseconds=1)
_STATUS = {"in-progress": 1, "completed": 2, "failed": 3, "withdrawn": 4}
_COMPLETED = 2
# A course's counters: enrolled, in progress, completed, failed, withdrawn, score total (in
# millionths), scored, milliseconds to complete, timed.
_ENROLLED, _SCORE_TOTAL, _SCORED, _MS_TOTAL, _TIMED = 0, 5, 6, 7, 8
# The joined course's fields, in the join's order.
_CODE, _TITLE, _CATEGORY, _MANDATORY = 0, 1, 2, 3
_FIELD = {"category": _CATEGORY, "is_mandatory": _MANDATORY}


def scaled_score(value: Any) -> int | Decimal | float | None:
    """`value` in millionths rounded half to even, or None when it is not a number."""
    kind = value.__class__
    if kind is float or (isinstance(value, int) and kind is not bool):
        scaled: int = round(value * SCALE)
        return scaled
    if kind is Decimal128:
        exact: Decimal = value.to_decimal() * SCALE
        return exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN) if exact.is_finite() else exact
    return None


class CourseFigures:
    """The `Grouper` of course-completion; `wanted`: the course's field values a row must have
    (category, mandatory), tested on the joined course."""

    def __init__(self, wanted: dict[str, Any]) -> None:
        self.wanted = [(_FIELD[k], v) for k, v in wanted.items()]
        self.courses: dict[Any, tuple[Any, ...]] = {}
        self.counts: dict[Any, list[Any]] = {}

    def add(self, docs: list[dict[str, Any]], dims: Dimensions) -> None:
        courses, counts, known = dims[0], self.counts, self.courses
        for doc in docs:
            course_id = doc.get("course_id")
            counters = counts.get(course_id)
            if counters is None:
                counters = counts[course_id] = [0, 0, 0, 0, 0, 0, 0, 0, 0]
                known[course_id] = courses.get(course_id) or (None, None, None, None)
            counters[_ENROLLED] += 1
            at = _STATUS.get(doc.get("status"))  # type: ignore[arg-type]
            if at is None:
                continue
            counters[at] += 1
            if at != _COMPLETED:
                continue
            score = scaled_score(doc.get("score"))
            if score is not None:
                counters[_SCORE_TOTAL] += score
                counters[_SCORED] += 1
            completed, enrolled = doc.get("completed_at"), doc.get("enrolled_at")
            if completed.__class__ is datetime and enrolled.__class__ is datetime:
                counters[_MS_TOTAL] += (completed - enrolled) // _MS
                counters[_TIMED] += 1

    def rows(self) -> list[Row]:
        kept = [
            (course_id, self.courses[course_id])
            for course_id in self.counts
            if all(_equal(self.courses[course_id][at], v) for at, v in self.wanted)
        ]
        kept.sort(key=_order)
        return [_row(course, self.counts[course_id]) for course_id, course in kept]


def _equal(value: Any, wanted: Any) -> bool:
    """The server's equality: a boolean equals only a boolean."""
    return value.__class__ is wanted.__class__ and bool(value == wanted)


def _order(item: tuple[Any, tuple[Any, ...]]) -> tuple[Any, ...]:
    course_id, course = item
    code = course[_CODE]
    return (code is not None, code or "", course_id is not None, str(course_id or ""))


def _row(course: tuple[Any, ...], c: list[Any]) -> Row:
    enrolled, completed, withdrawn = c[_ENROLLED], c[_COMPLETED], c[4]
    return (
        course[_CODE],
        course[_TITLE],
        course[_CATEGORY],
        course[_MANDATORY],
        enrolled,
        c[1],
        completed,
        c[3],
        withdrawn,
        rate(completed, enrolled - withdrawn),
        exact_average(c[_SCORE_TOTAL] if c[_SCORED] else None, c[_SCORED]),
        exact_average(c[_MS_TOTAL] if c[_TIMED] else None, c[_TIMED], MS_PER_DAY),
    )
