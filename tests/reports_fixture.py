"""A small fixed organisation whose report figures are worked out by hand in
tests/test_report_types.py. All datetimes are UTC; "now" is 2026-03-20 12:00 UTC.

Departments: Engineering (ENG) > Platform (PLT); Sales (SAL). Alice's name is spelled "alice
Adams" so that name sorting is checked to be case-insensitive (she sorts before Bob).
Courses: SEC101 compliance, mandatory, pass 70 · PY201 engineering, pass 80, taught by Ivy ·
NEG301 sales, mandatory, pass 60. SEC101 and PY201 list their quizzes q-sec-1 and q-py-1 with
titles.

| # | learner (dept) | course | enrolled | status | completed | score | due |
|---|---|---|---|---|---|---|---|
| e1 | Alice (ENG) | SEC101 | 03-02 09:00 | completed | 03-05 09:00 | 90 | 03-10 |
| e2 | Alice (ENG) | PY201 | 03-03 10:00 | in-progress | | | 03-15 |
| e3 | Bob (ENG) | SEC101 | 03-04 08:00 | completed | 03-16 08:00 | 75 | 03-12 |
| e4 | Bob (ENG) | PY201 | 03-05 12:00 | withdrawn | | | 03-10 |
| e5 | Carol (PLT) | SEC101 | 03-06 09:00 | enrolled | | | 04-05 |
| e6 | Carol (PLT) | PY201 | 03-01 02:00 | completed | 03-08 02:00 | 70 | |
| e7 | Dave (SAL) | NEG301 | 02-20 09:00 | failed | | 40 | 03-01 |
| e8 | Dave (SAL) | SEC101 | 03-10 00:00 | enrolled | | | |
| e9 | Carol (PLT) | NEG301 | 03-31 23:30 | enrolled | | | 06-01 |

Learning events (the learner's department; the enrollment's course):

| # | who | type | at | payload |
|---|---|---|---|---|
| v1 | Alice | lesson-completed | 03-02 10:00 | 1800 s |
| v2 | Alice | quiz-submitted (SEC) | 03-05 08:00 | score 90, q-sec-1, 600 s |
| v3 | Bob | quiz-submitted (SEC) | 03-06 09:00 | score 65, q-sec-1, 600 s |
| v4 | Bob | quiz-submitted (SEC) | 03-15 09:00 | score 75, q-sec-1, 600 s |
| v5 | Carol | quiz-submitted (PY) | 03-07 23:30 | score 70, q-py-1 |
| v6 | Carol | lesson-completed | 03-29 00:30 | 3600 s |
| v7 | Carol | lesson-completed | 03-29 01:30 | 1800 s |
| v8 | Dave | lesson-started (NEG) | 02-28 23:30 | |
| v9 | Alice | quiz-submitted (PY) | 03-20 10:00 | score 85, q-py-1 |
| v10 | Dave | quiz-submitted (SEC) | 03-11 10:00 | q-sec-1, no score |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.learning_events.models import LearningEvent
from app.platform.models import Course, Department, Enrollment, User
from tests import factories as f
from tests.factories import dt

NOW = dt(2026, 3, 20, 12)


@dataclass
class Dataset:
    eng: Department
    plat: Department
    sales: Department
    alice: User
    bob: User
    carol: User
    dave: User
    ivy: User
    sec: Course
    py: Course
    neg: Course
    enrollments: dict[str, Enrollment]
    events: dict[str, LearningEvent]

    def id(self, doc: Department | User | Course) -> str:
        return str(doc.id)


async def build_dataset() -> Dataset:
    eng = await f.department("Engineering", code="ENG")
    plat = await f.department("Platform", code="PLT", parent=eng)
    sales = await f.department("Sales", code="SAL")

    alice = await f.user("alice Adams", dept=eng, email="alice@example.test")
    bob = await f.user("Bob Brown", dept=eng, email="bob@example.test")
    carol = await f.user("Carol Chen", dept=plat, email="carol@example.test")
    dave = await f.user("Dave Diaz", dept=sales, email="dave@example.test")
    ivy = await f.user("Ivy Instructor", dept=eng, roles=["instructor"], email="ivy@example.test")

    sec = await f.course(
        "SEC101",
        title="Security Basics",
        dept=eng,
        category="compliance",
        mandatory=True,
        quizzes={"q-sec-1": "Security Basics: final quiz"},
    )
    py = await f.course(
        "PY201",
        title="Python",
        category="engineering",
        passing_score=80,
        instructors=[ivy],
        quizzes={"q-py-1": "Python: final quiz"},
    )
    neg = await f.course(
        "NEG301",
        title="Negotiation",
        dept=sales,
        category="sales",
        mandatory=True,
        passing_score=60,
    )

    def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        return dt(2026, month, day, hour, minute)

    e = {
        "e1": await f.enrollment(
            alice,
            sec,
            enrolled_at=at(3, 2, 9),
            status="completed",
            completed_at=at(3, 5, 9),
            score=90,
            due_at=at(3, 10),
            progress_percent=100,
            time_spent_minutes=45,
            last_activity_at=at(3, 5, 9),
        ),
        "e2": await f.enrollment(
            alice,
            py,
            enrolled_at=at(3, 3, 10),
            status="in-progress",
            due_at=at(3, 15),
            progress_percent=40,
            time_spent_minutes=30,
            last_activity_at=at(3, 10),
        ),
        "e3": await f.enrollment(
            bob,
            sec,
            enrolled_at=at(3, 4, 8),
            status="completed",
            completed_at=at(3, 16, 8),
            score=75,
            due_at=at(3, 12),
            progress_percent=100,
        ),
        "e4": await f.enrollment(
            bob, py, enrolled_at=at(3, 5, 12), status="withdrawn", due_at=at(3, 10)
        ),
        "e5": await f.enrollment(carol, sec, enrolled_at=at(3, 6, 9), due_at=at(4, 5)),
        "e6": await f.enrollment(
            carol,
            py,
            enrolled_at=at(3, 1, 2),
            status="completed",
            completed_at=at(3, 8, 2),
            score=70,
            progress_percent=100,
        ),
        "e7": await f.enrollment(
            dave, neg, enrolled_at=at(2, 20, 9), status="failed", score=40, due_at=at(3, 1)
        ),
        "e8": await f.enrollment(dave, sec, enrolled_at=at(3, 10)),
        "e9": await f.enrollment(carol, neg, enrolled_at=at(3, 31, 23, 30), due_at=at(6, 1)),
    }

    async def ev(
        name: str, kind: str, who: User, when: datetime, enr: str | None = None, **payload: object
    ) -> tuple[str, LearningEvent]:
        return name, await f.event(
            kind, who, occurred_at=when, enr=e[enr] if enr else None, payload=dict(payload)
        )

    events = dict(
        [
            await ev("v1", "lesson-completed", alice, at(3, 2, 10), "e1", durationSeconds=1800),
            await ev(
                "v2",
                "quiz-submitted",
                alice,
                at(3, 5, 8),
                "e1",
                score=90,
                quizId="q-sec-1",
                durationSeconds=600,
            ),
            await ev(
                "v3",
                "quiz-submitted",
                bob,
                at(3, 6, 9),
                "e3",
                score=65,
                quizId="q-sec-1",
                durationSeconds=600,
            ),
            await ev(
                "v4",
                "quiz-submitted",
                bob,
                at(3, 15, 9),
                "e3",
                score=75,
                quizId="q-sec-1",
                durationSeconds=600,
            ),
            await ev(
                "v5", "quiz-submitted", carol, at(3, 7, 23, 30), "e6", score=70, quizId="q-py-1"
            ),
            await ev("v6", "lesson-completed", carol, at(3, 29, 0, 30), "e6", durationSeconds=3600),
            await ev("v7", "lesson-completed", carol, at(3, 29, 1, 30), "e6", durationSeconds=1800),
            await ev("v8", "lesson-started", dave, at(2, 28, 23, 30), "e7"),
            await ev("v9", "quiz-submitted", alice, at(3, 20, 10), "e2", score=85, quizId="q-py-1"),
            await ev("v10", "quiz-submitted", dave, at(3, 11, 10), "e8", quizId="q-sec-1"),
        ]
    )
    return Dataset(eng, plat, sales, alice, bob, carol, dave, ivy, sec, py, neg, e, events)
