"""What the learning-event backfill does to one batch: which fields each event gets, whether it
is then complete, and the conditional updates that apply it (`app.learning_events.backfill`
runs the batches, checkpoints and counts)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId, encode
from pymongo import UpdateMany, UpdateOne

from app.learning_events import payload_numbers
from app.learning_events.service import COURSE_EVENT_TYPES
from app.lookups import validation
from app.lookups.validation import suggest_kebab
from app.platform.models import Course, Enrollment, User

EVENT_TYPE_CATEGORY = "learning-event-type"
# Legacy events stored payload numbers as strings ("85", "300"); reports only read numbers, so
# the contract's verdict (`payload_numbers`) coerces them or reports them.
PAYLOAD_FIELDS = {f"payload.{key}": key for key in payload_numbers.NUMBER_KEYS}
# At most this many ids in one grouped update (`operations`).
GROUP_IDS = 500
COUNTERS = ("scanned", "updated", "already_ok", "unresolvable", "partially_updated")

Mongo = dict[str, Any]


@dataclass
class Summary:
    scanned: int = 0
    updated: int = 0  # changed and now complete
    already_ok: int = 0  # nothing to do
    unresolvable: int = 0  # still incomplete after this run (maybe partly updated)
    partially_updated: int = 0  # of the unresolvable ones, those that got some fields
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, counts: Mongo) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + int(counts.get(name, 0)))
        self.reasons.update({k: int(v) for k, v in (counts.get("reasons") or {}).items()})

    def as_counts(self) -> Mongo:
        return {**{name: getattr(self, name) for name in COUNTERS}, "reasons": dict(self.reasons)}

    @property
    def adds_up(self) -> bool:
        return self.scanned == self.updated + self.already_ok + self.unresolvable

    def lines(self) -> list[str]:
        out = [
            f"scanned       {self.scanned:>10,}",
            f"updated       {self.updated:>10,}",
            f"already ok    {self.already_ok:>10,}",
            f"unresolvable  {self.unresolvable:>10,}"
            + (f"  ({self.partially_updated:,} partly filled)" if self.partially_updated else ""),
        ]
        out += [f"  {reason:<28}{n:>8,}" for reason, n in sorted(self.reasons.items())]
        return out


@dataclass
class Plan:
    """Changes for one batch: conditional updates plus the counts they stand for."""

    changes: list[Mongo] = field(default_factory=list)  # {_id, set: {...}, type_from: str?}
    counts: Summary = field(default_factory=Summary)


def as_object_id(value: Any) -> ObjectId | None:
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str) and ObjectId.is_valid(value):
        return ObjectId(value)
    return None


async def plan_batch(docs: list[Mongo]) -> Plan:
    """Works out, for each event, which fields to fill and whether it can be fully fixed."""
    user_ids = {u for d in docs if (u := as_object_id(d.get("user_id")))}
    users: dict[ObjectId, Mongo] = {
        u["_id"]: u
        async for u in User.get_pymongo_collection().find(
            {"_id": {"$in": list(user_ids)}}, {"department_id": 1}
        )
    }
    # Course candidates: stored course_id, legacy payload.courseId, or the stored enrollment's.
    enrollment_ids = {e for d in docs if (e := as_object_id(d.get("enrollment_id")))}
    by_enrollment_id: dict[ObjectId, Mongo] = {}
    if enrollment_ids:
        by_enrollment_id = {
            e["_id"]: e
            async for e in Enrollment.get_pymongo_collection().find(
                {"_id": {"$in": list(enrollment_ids)}}, {"user_id": 1, "course_id": 1}
            )
        }

    def course_of(doc: Mongo) -> tuple[ObjectId | None, str | None]:
        if doc.get("course_id") is not None:
            return as_object_id(doc["course_id"]), None
        legacy = (doc.get("payload") or {}).get("courseId")
        if legacy is not None:
            oid = as_object_id(legacy)
            return (oid, None) if oid else (None, "invalid-payload-course-id")
        enrollment_id = as_object_id(doc.get("enrollment_id"))
        if enrollment_id is not None:
            enrollment = by_enrollment_id.get(enrollment_id)
            return (enrollment["course_id"], None) if enrollment else (None, "unknown-enrollment")
        return None, "no-course-reference"

    courses_wanted = {c for d in docs if (c := course_of(d)[0])}
    known_courses: set[ObjectId] = set()
    pairs: dict[tuple[ObjectId, ObjectId], ObjectId] = {}
    if courses_wanted:
        known_courses = {
            c["_id"]
            async for c in Course.get_pymongo_collection().find(
                {"_id": {"$in": list(courses_wanted)}}, {"_id": 1}
            )
        }
    # Enrollments are looked up only for the events that lack one, by user alone (the prefix
    # of the (user_id, course_id) index; a user has a few dozen enrollments at most) and paired
    # with the course here: an `$in` on both fields is a cross product of index bounds.
    pair_users = {
        u for d in docs if d.get("enrollment_id") is None and (u := as_object_id(d.get("user_id")))
    }
    if pair_users and courses_wanted:
        async for e in Enrollment.get_pymongo_collection().find(
            {"user_id": {"$in": list(pair_users)}}, {"user_id": 1, "course_id": 1}
        ):
            if e["course_id"] in courses_wanted:
                pairs[(e["user_id"], e["course_id"])] = e["_id"]

    plan = Plan()
    for doc in docs:
        to_set: Mongo = {}
        problems: list[str] = []
        change: Mongo = {"_id": doc["_id"]}

        event_type = doc.get("type")
        effective_type = event_type
        if not isinstance(event_type, str) or not validation.is_valid(
            EVENT_TYPE_CATEGORY, event_type, include_inactive=True
        ):
            fixed = suggest_kebab(event_type) if isinstance(event_type, str) else None
            if fixed and validation.is_valid(EVENT_TYPE_CATEGORY, fixed, include_inactive=True):
                to_set["type"] = fixed
                change["type_from"] = event_type
                effective_type = fixed
            else:
                problems.append("unknown-type")

        user_id = as_object_id(doc.get("user_id"))
        user = users.get(user_id) if user_id else None
        if user is None:
            problems.append("unknown-user")
        elif doc.get("department_id") is None:
            if user.get("department_id") is not None:
                to_set["department_id"] = user["department_id"]
            else:
                problems.append("user-without-department")

        course_scoped = effective_type in COURSE_EVENT_TYPES or "unknown-type" in problems
        course_id, course_problem = course_of(doc)
        if doc.get("course_id") is None and course_scoped:
            if course_problem:
                problems.append(course_problem)
            elif course_id not in known_courses:
                problems.append("unknown-course")
            else:
                to_set["course_id"] = course_id
        if doc.get("enrollment_id") is None and course_scoped and course_id is not None:
            enrollment_id = pairs.get((user_id, course_id)) if user_id else None
            if enrollment_id is not None:
                to_set["enrollment_id"] = enrollment_id
            elif "unknown-user" not in problems and "unknown-course" not in problems:
                problems.append("no-enrollment")

        payload = doc.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        for field_name, key in PAYLOAD_FIELDS.items():
            verdict = payload_numbers.judge(key, payload.get(key))
            if verdict.changes:
                to_set[field_name] = verdict.value
                change.setdefault("from", {})[key] = payload[key]  # no dots in stored keys
            elif verdict.refused:
                problems.append(verdict.refused)

        counts = plan.counts
        counts.scanned += 1
        if to_set:
            change["set"] = to_set
            plan.changes.append(change)
        if problems:
            counts.unresolvable += 1
            counts.partially_updated += 1 if to_set else 0
            counts.reasons.update(problems)
        elif to_set:
            counts.updated += 1
        else:
            counts.already_ok += 1
    return plan


def operations(changes: list[Mongo]) -> list[UpdateOne | UpdateMany]:
    """One pipeline update per event, each field conditional inside it: a field already filled
    (or a type already fixed) keeps its value, so re-applying a batch, or racing a writer that
    fixed the field first, changes nothing. Events whose updates are the same (the events of
    one enrollment, mostly) share one statement, `_id $in` their ids: each document is still
    updated on its own, atomically, by the same conditional pipeline."""
    groups: dict[bytes, tuple[Mongo, list[Any]]] = {}
    for change in changes:
        stage = _stage(change)
        if stage:
            groups.setdefault(encode(stage), (stage, []))[1].append(change["_id"])
    ops: list[UpdateOne | UpdateMany] = []
    for stage, ids in groups.values():
        for lo in range(0, len(ids), GROUP_IDS):
            chunk = ids[lo : lo + GROUP_IDS]
            if len(chunk) == 1:
                ops.append(UpdateOne({"_id": chunk[0]}, [{"$set": stage}]))
            else:
                ops.append(UpdateMany({"_id": {"$in": chunk}}, [{"$set": stage}]))
    return ops


def _stage(change: Mongo) -> Mongo:
    stage: Mongo = {}
    for name, value in change["set"].items():
        if name in PAYLOAD_FIELDS:
            # Only while the stored value is still the string that was read.
            stage[name] = {
                "$cond": [
                    {"$eq": [f"${name}", {"$literal": change["from"][PAYLOAD_FIELDS[name]]}]},
                    {"$literal": value},
                    f"${name}",
                ]
            }
        elif name == "type":
            stage["type"] = {
                "$cond": [
                    {"$eq": ["$type", {"$literal": change["type_from"]}]},
                    {"$literal": value},
                    "$type",
                ]
            }
        else:
            stage[name] = {"$ifNull": [f"${name}", {"$literal": value}]}
    return stage
