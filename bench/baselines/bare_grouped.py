"""The read limit of each report type (P10): a bare synchronous PyMongo `find()` of the
documents the type's figures come from — the product's filter on the same index, only the
fields the figures need — grouped in a Python dict (a grouping type) or joined with the names
read into dicts (a row type), written with `csv.writer` in the file's order (a row type ordered
by names is sorted in memory). No formatting, no job bookkeeping: the least work that yields
the file's figures.

    python -m bench.baselines.bare_grouped --type T --from DAY --to DAY --out PATH

Prints one JSON line: wall seconds, CPU seconds of this process, rows written, documents read,
peak RSS (MB).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo import MongoClient

Db = Any
Doc = dict[str, Any]
Range = dict[str, datetime]
BATCH = 5000


def _find(coll: Any, flt: Doc, fields: Iterable[str]) -> Iterable[Doc]:
    projection = {"_id": 0} | dict.fromkeys(fields, 1)
    return coll.find(flt, projection, batch_size=BATCH)  # type: ignore[no-any-return]


def _names(db: Db, name: str, fields: Iterable[str]) -> dict[Any, Doc]:
    return {d["_id"]: d for d in db[name].find({}, dict.fromkeys(fields, 1))}


def course_completion(db: Db, rng: Range, out: Any) -> tuple[int, int]:
    by_course: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0])
    statuses = {"in-progress": 1, "completed": 2, "failed": 3, "withdrawn": 4}
    read = 0
    for doc in _find(db.enrollments, {"enrolled_at": rng},
                     ("course_id", "status", "score", "enrolled_at", "completed_at")):  # fmt: skip
        read += 1
        g = by_course[doc["course_id"]]
        g[0] += 1
        at = statuses.get(doc["status"])
        if at:
            g[at] += 1
        if at == 2:
            if doc.get("score") is not None:
                g[5] += round(doc["score"] * 1_000_000)
            if doc.get("completed_at") is not None:
                g[6] += int((doc["completed_at"] - doc["enrolled_at"]).total_seconds() * 1000)
    courses = _names(db, "courses", ("code", "title", "category"))
    for cid in sorted(by_course, key=lambda c: courses[c]["code"]):
        c, g = courses[cid], by_course[cid]
        out.writerow([c["code"], c["title"], c["category"], *g[:5],
                      g[5] / max(1, g[2]) / 1e6, g[6] / max(1, g[2]) / 86_400_000])  # fmt: skip
    return len(by_course), read


def department_summary(db: Db, rng: Range, out: Any) -> tuple[int, int]:
    figs: dict[Any, list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0, set(), 0.0])
    read = 0
    for doc in _find(db.enrollments, {"enrolled_at": rng}, ("department_id", "status")):
        read += 1
        f = figs[doc["department_id"]]
        f[0] += 1
        f[1] += doc["status"] == "withdrawn"
        f[2] += doc["status"] == "completed"
    for doc in _find(db.enrollments, {"completed_at": rng}, ("department_id", "score")):
        read += 1
        f = figs[doc["department_id"]]
        f[3] += 1
        if doc.get("score") is not None:
            f[4] += round(doc["score"] * 1_000_000)
            f[5] += 1
    closed = ("completed", "withdrawn")
    every = {"$in": [d["_id"] for d in db.departments.find({}, {"_id": 1})]}
    overdue = {"department_id": every, "due_at": {"$lt": rng["$lt"]}}  # the product's filter
    for doc in _find(db.enrollments, overdue, ("department_id", "status")):
        read += 1
        if doc["status"] not in closed:
            figs[doc["department_id"]][6] += 1
    for doc in _find(db.learning_events, {"occurred_at": rng},
                     ("department_id", "user_id", "payload.durationSeconds")):  # fmt: skip
        read += 1
        f = figs[doc["department_id"]]
        f[7].add(doc["user_id"])
        f[8] += (doc.get("payload") or {}).get("durationSeconds") or 0
    departments = _names(db, "departments", ("name", "code"))
    for did in sorted(figs, key=lambda d: departments[d]["name"]):
        d, f = departments[did], figs[did]
        out.writerow([d["name"], d["code"], f[0], f[1], f[2], f[2] / max(1, f[0] - f[1]), f[3],
                      f[4] / max(1, f[5]) / 1e6, len(f[7]), round(f[8] / 3600, 1), f[6]])  # fmt: skip
    return len(figs), read


def learning_activity(db: Db, rng: Range, out: Any) -> tuple[int, int]:
    groups: dict[tuple[date, str], list[Any]] = defaultdict(lambda: [0, set()])
    read = 0
    for doc in _find(db.learning_events, {"occurred_at": rng}, ("occurred_at", "type", "user_id")):
        read += 1
        g = groups[(doc["occurred_at"].date(), doc["type"])]
        g[0] += 1
        g[1].add(doc["user_id"])
    for key in sorted(groups):
        out.writerow([key[0].isoformat(), key[1], groups[key][0], len(groups[key][1])])
    return len(groups), read


def _rows_with_names(
    db: Db,
    reads: list[tuple[Any, Doc]],
    fields: tuple[str, ...],
    cells: Callable[[Doc], list[Any]],
    out: Any,
    by_names: bool,
) -> tuple[int, int]:
    """Each document's row after the learner, department and course names; `by_names`: in
    the product's order (department, learner, course names case-folded, then `_id`), sorted in
    memory, else in the order read (the index order the product's rows follow)."""
    users = _names(db, "users", ("name", "email"))
    courses = _names(db, "courses", ("code", "title"))
    departments = _names(db, "departments", ("name",))
    keyed: list[tuple[Any, list[Any]]] = []
    written = 0
    for coll, flt in reads:
        for doc in _find(coll, flt, (*fields, "_id", "department_id")):
            user, course = users[doc["user_id"]], courses[doc["course_id"]]
            dept = departments[doc["department_id"]]["name"]
            row = [user["name"], user["email"], dept, course["code"], course["title"], *cells(doc)]
            written += 1
            if not by_names:
                out.writerow(row)
                continue
            key = (dept.casefold(), user["name"].casefold(), course["code"].casefold(), doc["_id"])
            keyed.append((key, row))
    if by_names:
        keyed.sort(key=lambda pair: pair[0])
        out.writerows(row for _, row in keyed)
    return written, written


def assessment_results(db: Db, rng: Range, out: Any) -> tuple[int, int]:
    def cells(doc: Doc) -> list[Any]:
        p = doc.get("payload") or {}
        return [p.get("quizId"), p.get("score"), doc["occurred_at"].isoformat()]

    # The product's order, (occurred_at, _id), is the index's within the one type.
    read = [(db.learning_events, {"type": "quiz-submitted", "occurred_at": rng})]
    fields = ("user_id", "course_id", "payload", "occurred_at")
    return _rows_with_names(db, read, fields, cells, out, by_names=False)


def compliance_status(db: Db, rng: Range, out: Any) -> tuple[int, int]:
    def cells(doc: Doc) -> list[Any]:
        return [doc.get("due_at"), doc["status"], doc.get("completed_at")]

    mandatory = [c["_id"] for c in db.courses.find({"is_mandatory": True}, {"_id": 1})]
    reads = [(db.enrollments, {"course_id": c}) for c in mandatory]
    fields = ("user_id", "course_id", "due_at", "status", "completed_at")
    return _rows_with_names(db, reads, fields, cells, out, by_names=True)


TYPES: dict[str, Callable[[Db, Range, Any], tuple[int, int]]] = {
    "course-completion": course_completion,
    "department-summary": department_summary,
    "learning-activity": learning_activity,
    "assessment-results": assessment_results,
    "compliance-status": compliance_status,
}


def main() -> None:
    from app.config import get_settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--type", required=True, choices=sorted(TYPES))
    parser.add_argument("--from", dest="from_", required=True, type=date.fromisoformat)
    parser.add_argument("--to", required=True, type=date.fromisoformat)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    settings = get_settings()
    start = datetime(args.from_.year, args.from_.month, args.from_.day, tzinfo=UTC)
    end = datetime(args.to.year, args.to.month, args.to.day, tzinfo=UTC) + timedelta(days=1)
    client: MongoClient[Doc] = MongoClient(settings.mongodb_url, connectTimeoutMS=900_000)
    db = client[settings.mongodb_db]
    cpu0, t0 = time.process_time(), time.perf_counter()
    with open(args.out, "w", newline="", encoding="utf-8") as fh:
        rows, read = TYPES[args.type](db, {"$gte": start, "$lt": end}, csv.writer(fh))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "rows": rows, "read": read, "peak_mb": peak}))


if __name__ == "__main__":
    main()
