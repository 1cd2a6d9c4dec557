"""`generate(scale, seed, now)`: the demo organisation as documents, pure and deterministic."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bson import ObjectId

from scripts.demo_data.catalogue import (
    CATALOGUE,
    DEMO_ACCOUNTS,
    DEMO_DOMAIN,
    DEPARTMENTS,
    FIRST_NAMES,
    HISTORY_DAYS,
    LAST_NAMES,
    LEVELS,
    STATUS_WEIGHTS,
    TEAMS,
    Doc,
)

# Every course has one quiz, its final quiz; its id is unique within the course (learning
# events name it with the course), its title the course's.
FINAL_QUIZ = "final-quiz"


class _Ids:
    """Deterministic ObjectIds: a fixed timestamp (from `now`), a kind byte and a counter, so the
    same seed gives the same ids and ids of one kind sort in creation order."""

    KINDS = {"department": 1, "user": 2, "course": 3, "enrollment": 4, "event": 5}

    def __init__(self, now: datetime, seed: int) -> None:
        self.prefix = struct.pack(">I", int(now.timestamp()) & 0xFFFFFFFF)
        self.seed_byte = seed & 0xFF
        self.counters = dict.fromkeys(self.KINDS, 0)

    def next(self, kind: str) -> ObjectId:
        self.counters[kind] += 1
        tail = bytes([self.seed_byte, self.KINDS[kind]]) + self.counters[kind].to_bytes(6, "big")
        return ObjectId(self.prefix + tail)


@dataclass
class DemoData:
    """The small collections (in memory) and the big ones as batch streams."""

    departments: list[Doc]
    users: list[Doc]
    courses: list[Doc]
    enrollments_target: int
    # yields (enrollments, events) batches
    stream: Callable[[int], Iterator[tuple[list[Doc], list[Doc]]]]
    counts: dict[str, int] = field(default_factory=dict)


def generate(scale: int, seed: int, now: datetime) -> DemoData:
    rng = random.Random(seed)
    ids = _Ids(now, seed)

    def stamp(doc: Doc, created: datetime) -> Doc:
        doc["created_at"] = created
        doc["updated_at"] = created
        return doc

    org_created = now - timedelta(days=HISTORY_DAYS + 200)
    departments: list[Doc] = []
    dept_by_code: dict[str, Doc] = {}
    for code, name, parent in DEPARTMENTS:
        parent_doc = dept_by_code.get(parent) if parent else None
        doc = stamp(
            {
                "_id": ids.next("department"),
                "name": name,
                "code": code,
                "parent_id": parent_doc["_id"] if parent_doc else None,
                "ancestor_ids": [*parent_doc["ancestor_ids"], parent_doc["_id"]]
                if parent_doc
                else [],
            },
            org_created,
        )
        dept_by_code[code] = doc
        departments.append(doc)

    # People: ~8 enrollments each; a handful of instructors and one manager per department.
    n_courses = max(20, min(240, round(4 * math.log10(scale) ** 2)))
    n_learners = max(30, math.ceil(scale / 8))
    emails: set[str] = set()
    users: list[Doc] = []

    def person(
        roles: list[str], dept_code: str, email: str | None = None, name: str | None = None
    ) -> Doc:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        full = name or f"{first} {last}"
        if email is None:
            base = f"{first}.{last}".lower()
            email, n = f"{base}@{DEMO_DOMAIN}", 1
            while email in emails:
                n += 1
                email = f"{base}{n}@{DEMO_DOMAIN}"
        emails.add(email)
        joined = now - timedelta(days=rng.randint(HISTORY_DAYS + 10, HISTORY_DAYS + 900))
        doc = stamp(
            {
                "_id": ids.next("user"),
                "name": full,
                "email": email,
                "department_id": dept_by_code[dept_code]["_id"],
                "roles": roles,
                "status": "active",
            },
            joined,
        )
        users.append(doc)
        return doc

    person(["admin"], "OPS-HR", DEMO_ACCOUNTS["admin"], "Priya Raman")
    person(["manager"], "ENG", DEMO_ACCOUNTS["manager"], "Daniel Okafor")
    instructor = person(["instructor"], "OPS-HR", DEMO_ACCOUNTS["instructor"], "Sofia Lindqvist")
    learner = person(["learner"], "ENG-PLAT", DEMO_ACCOUNTS["learner"], "Liam Carter")
    for code, _name, _parent in DEPARTMENTS[1:]:
        if code != "ENG":
            person(["manager"], code)
    instructors = [instructor] + [
        person(["instructor"], rng.choice(["OPS-HR", "ENG-PLAT", "SALES-EMEA", "CS-ONB"]))
        for _ in range(max(3, n_courses // 6))
    ]
    team_codes = [code for code, _ in TEAMS]
    team_weights = [w for _, w in TEAMS]
    learners = [learner] + [
        person(["learner"], rng.choices(team_codes, team_weights)[0]) for _ in range(n_learners - 1)
    ]
    for doc in learners[1:]:
        if rng.random() < 0.04:
            doc["status"] = "inactive"

    # Courses: the mandatory compliance ones, then electives in levels until n_courses.
    courses: list[Doc] = []
    owner = {"compliance": "OPS-LEG", "engineering": "ENG", "sales": "SALES",
             "leadership": "OPS-HR", "customer-success": "CS", "productivity": "OPS-HR"}  # fmt: skip
    level = 0
    while len(courses) < n_courses:
        for category, prefix, is_mandatory, titles in CATALOGUE:
            if is_mandatory and level > 0:
                continue
            for number, title in enumerate(titles, start=1):
                if len(courses) >= n_courses:
                    break
                duration = rng.choice([30, 45, 60, 90, 120, 180, 240])
                course_title = f"{LEVELS[level % len(LEVELS)]}{title}" + (
                    f" ({level // len(LEVELS) + 1})" if level >= len(LEVELS) else ""
                )
                courses.append(
                    stamp(
                        {
                            "_id": ids.next("course"),
                            "code": f"{prefix}-{100 * (level + 1) + number}",
                            "title": course_title,
                            "category": category,
                            "department_id": dept_by_code[owner[category]]["_id"],
                            "instructor_ids": [],
                            "is_mandatory": is_mandatory,
                            "duration_minutes": duration,
                            "passing_score": float(rng.choice([60, 70, 70, 75, 80])),
                            # The quiz its learning events name (payload.quizId), with a title.
                            "quizzes": [{"id": FINAL_QUIZ, "title": f"{course_title}: final quiz"}],
                            "lessons": max(2, min(8, duration // 30)),
                        },
                        org_created + timedelta(days=rng.randint(0, 150)),
                    )
                )
        level += 1
    for i, course in enumerate(courses):
        teacher = instructors[i % len(instructors)] if i >= 3 else instructor
        course["instructor_ids"] = [teacher["_id"]]
    mandatory = [c for c in courses if c["is_mandatory"]]
    electives = [c for c in courses if not c["is_mandatory"]]

    # How many enrollments each learner gets, adjusted to add up to `scale` exactly.
    per_user = [rng.randint(4, 12) for _ in learners]
    per_user[0] = 6
    cap = len(courses)
    total = sum(per_user)
    while total != scale:
        i = rng.randrange(1, len(learners))
        if total > scale and per_user[i] > 0:
            per_user[i] -= 1
            total -= 1
        elif total < scale and per_user[i] < cap:
            per_user[i] += 1
            total += 1

    lesson_count = {c["_id"]: c.pop("lessons") for c in courses}
    status_names = list(STATUS_WEIGHTS)
    status_weights = list(STATUS_WEIGHTS.values())
    learner_plan = ["completed", "completed", "in-progress", "enrolled", "failed", "withdrawn"]

    def stream(batch_size: int) -> Iterator[tuple[list[Doc], list[Doc]]]:
        enrollments: list[Doc] = []
        events: list[Doc] = []
        for index, user in enumerate(learners):
            k = per_user[index]
            if k == 0:
                continue
            takes_mandatory = index == 0 or rng.random() < 0.9
            picked = mandatory[: min(k, len(mandatory))] if takes_mandatory else []
            if len(picked) < k:
                chosen = {c["_id"] for c in picked}
                pool = [c for c in electives if c["_id"] not in chosen]
                if len(pool) < k - len(picked):  # more enrollments than electives: any course
                    pool = [c for c in courses if c["_id"] not in chosen]
                picked = picked + rng.sample(pool, k - len(picked))
            for n, course in enumerate(picked):
                if index == 0:
                    status = learner_plan[n % len(learner_plan)]
                else:
                    status = rng.choices(status_names, status_weights)[0]
                enrollment, evs = _enrollment(
                    rng, ids, now, user, course, lesson_count[course["_id"]], status,
                    overdue=index == 0 and status == "enrolled",
                )  # fmt: skip
                enrollments.append(enrollment)
                events.extend(evs)
                if len(enrollments) >= batch_size or len(events) >= batch_size:
                    yield enrollments, events
                    enrollments, events = [], []
        if enrollments or events:
            yield enrollments, events

    return DemoData(
        departments=departments,
        users=users,
        courses=courses,
        enrollments_target=scale,
        stream=stream,
    )


def _enrollment(
    rng: random.Random,
    ids: _Ids,
    now: datetime,
    user: Doc,
    course: Doc,
    lessons: int,
    status: str,
    *,
    overdue: bool = False,
) -> tuple[Doc, list[Doc]]:
    enrollment_id = ids.next("enrollment")
    passing = course["passing_score"]
    history = timedelta(days=HISTORY_DAYS)
    span = (
        timedelta(days=rng.uniform(14, 120))
        if status in ("completed", "failed")
        else timedelta(days=rng.uniform(1, 60))
    )
    earliest = now - history
    latest = now - (span if status in ("completed", "failed") else timedelta(hours=2))
    if overdue:
        latest = now - timedelta(days=45)
    enrolled_at = earliest + (latest - earliest) * rng.random()
    enrolled_at = enrolled_at.replace(microsecond=0)
    due_at = None
    if course["is_mandatory"]:
        due_at = enrolled_at + timedelta(days=30)
    elif rng.random() < 0.3:
        due_at = enrolled_at + timedelta(days=rng.choice([60, 90]))

    # The steps this enrollment went through: (offset in hours from enrolment, type, payload).
    steps: list[tuple[float, str, Doc]] = [(0.0, "course-enrolled", {})]
    lessons_done = 0
    quiz_score: float | None = None
    if status != "enrolled":
        t = rng.uniform(1, 24 * 10)
        steps.append((t, "course-started", {}))
        if status in ("completed", "failed"):
            lessons_done = lessons
        elif status == "in-progress":
            lessons_done = rng.randint(0, lessons - 1)
        else:  # withdrawn
            lessons_done = rng.randint(0, max(0, lessons // 2))
        minutes_per_lesson = course["duration_minutes"] / lessons
        for n in range(1, lessons_done + 1):
            t += rng.uniform(2, 24 * 5)
            steps.append((t, "lesson-started", {"lessonId": f"lesson-{n}"}))
            seconds = int(minutes_per_lesson * 60 * rng.uniform(0.6, 1.5))
            t += seconds / 3600
            steps.append(
                (t, "lesson-completed", {"lessonId": f"lesson-{n}", "durationSeconds": seconds})
            )
        if status == "in-progress" and lessons_done < lessons and rng.random() < 0.6:
            t += rng.uniform(2, 48)
            steps.append((t, "lesson-started", {"lessonId": f"lesson-{lessons_done + 1}"}))
        if status in ("completed", "failed"):
            attempts = rng.choice([1, 1, 1, 2]) if status == "completed" else rng.choice([1, 2, 3])
            for attempt in range(1, attempts + 1):
                final = attempt == attempts
                passed = final and status == "completed"
                if passed:
                    score = round(rng.uniform(passing, 100), 1)
                else:
                    score = round(rng.uniform(max(0, passing - 40), passing - 0.5), 1)
                t += rng.uniform(1, 72)
                steps.append((t, "quiz-started", {"quizId": FINAL_QUIZ}))
                seconds = rng.randint(300, 1800)
                t += seconds / 3600
                steps.append(
                    (
                        t,
                        "quiz-submitted",
                        {"quizId": FINAL_QUIZ, "score": score, "durationSeconds": seconds},
                    )
                )
                steps.append(
                    (
                        t,
                        "quiz-passed" if passed else "quiz-failed",
                        {"quizId": FINAL_QUIZ, "score": score},
                    )
                )
                quiz_score = score
            if status == "completed":
                steps.append((t, "course-completed", {}))
                steps.append((t, "certificate-issued", {"certificateId": f"CERT-{enrollment_id}"}))

    # Squeeze the timeline so nothing happens in the future.
    room = (now - enrolled_at).total_seconds() / 3600 - 0.5
    last = steps[-1][0]
    factor = min(1.0, room / last) if last > 0 else 1.0

    events: list[Doc] = []
    spent_seconds = 0
    for offset, event_type, payload in steps:
        at = (enrolled_at + timedelta(hours=offset * factor)).replace(microsecond=0)
        spent_seconds += int(payload.get("durationSeconds", 0))
        events.append(
            {
                "_id": ids.next("event"),
                "type": event_type,
                "user_id": user["_id"],
                "occurred_at": at,
                "payload": payload,
                "course_id": course["_id"],
                "department_id": user["department_id"],
                "enrollment_id": enrollment_id,
                "created_at": at,
                "updated_at": at,
            }
        )
    by_type = {e["type"]: e["occurred_at"] for e in events}
    progress = {
        "enrolled": 0.0,
        "completed": 100.0,
        "failed": round(100 * lessons / (lessons + 1), 1),
    }.get(status, round(100 * lessons_done / (lessons + 1), 1))
    last_at = events[-1]["occurred_at"]
    enrollment = {
        "_id": enrollment_id,
        "user_id": user["_id"],
        "course_id": course["_id"],
        "department_id": user["department_id"],
        "status": status,
        "enrolled_at": enrolled_at,
        "due_at": due_at,
        "started_at": by_type.get("course-started"),
        "completed_at": by_type.get("course-completed"),
        "progress_percent": progress,
        "score": quiz_score,
        "time_spent_minutes": round(spent_seconds / 60),
        "last_activity_at": last_at,
        "created_at": enrolled_at,
        "updated_at": last_at,
    }
    return enrollment, events
