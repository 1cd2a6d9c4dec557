"""Baselines for learner-progress files, each a bare synchronous PyMongo cursor piped straight
into `csv.writer`, raw XlsxWriter (constant-memory mode) or one single-process WeasyPrint
document with a plain HTML table:

- `--source read` (the read limit, default): a bare `find()` of the same enrollment documents
  the product reads — the same filters on the same index, the same projection — with no joins
  and no ordering: what the database can hand out, the floor for any report over these rows
  (the PDF's table shows the names instead of the ids, from dictionaries loaded before the
  clock starts: its cost is the layout of the text a reader sees);
- `--source aggregation` (information only): the aggregation the product ran before its joins
  moved to the worker (`$match` → 3 × `$lookup` → `$sort` under the name collation, hinted).

    python -m bench.baselines.bare_dump --format csv|xlsx|pdf --rows N --out PATH [--source S]

Prints one JSON line: wall seconds, CPU seconds of this process, rows, peak RSS (MB).
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import resource
import time
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import MongoClient


def _fact_read(rows: int) -> Any:
    from app.reports.types.learner_progress import LEARNER_PROGRESS
    from app.security import DataScope
    from bench.seed import report_range

    params = {"dateRange": report_range(rows), "timezone": "UTC"}
    resolved = LEARNER_PROGRESS.resolve(params, DataScope(), datetime.now(UTC))
    return LEARNER_PROGRESS.facts(LEARNER_PROGRESS.typed(resolved.parameters), resolved.scope)


def aggregation(rows: int) -> list[dict[str, Any]]:
    """The learner-progress aggregation as the product ran it before (joins on the server)."""
    from app.reports.reading.query import COURSES, DEPARTMENTS, USERS, lookup_one

    facts = _fact_read(rows)
    (match,) = facts.reads
    return [
        {"$match": match},
        *lookup_one(USERS, "user_id", "user", {"name": 1, "email": 1}),
        *lookup_one(COURSES, "course_id", "course", {"code": 1, "title": 1}),
        *lookup_one(DEPARTMENTS, "department_id", "department", {"name": 1}),
        {"$project": {**AGG_NAMES, **dict.fromkeys(FACT_FIELDS, 1)}},
        {"$sort": {"departmentName": 1, "learnerName": 1, "courseCode": 1, "_id": 1}},
    ]


AGG_NAMES = {"learnerName": "$user.name", "learnerEmail": "$user.email",
             "departmentName": "$department.name", "courseCode": "$course.code",
             "courseTitle": "$course.title"}  # fmt: skip
FACT_FIELDS = ("user_id", "course_id", "department_id", "status", "progress_percent", "score",
               "enrolled_at", "due_at", "completed_at", "time_spent_minutes",
               "last_activity_at")  # fmt: skip


Names = dict[str, dict[Any, dict[str, Any]]]


def _names(db: Any) -> Names:
    """Every user's, course's and department's names, by id."""
    return {
        "user": {d["_id"]: d for d in db.users.find({}, {"name": 1, "email": 1})},
        "course": {d["_id"]: d for d in db.courses.find({}, {"code": 1, "title": 1})},
        "department": {d["_id"]: d for d in db.departments.find({}, {"name": 1})},
    }


def _with_names(doc: dict[str, Any], names: Names) -> dict[str, Any]:
    """`doc` with the name fields of `AGG_NAMES` (`"$user.name"`: the user's `name`)."""
    joined = {
        "user": names["user"].get(doc.get("user_id"), {}),
        "course": names["course"].get(doc.get("course_id"), {}),
        "department": names["department"].get(doc.get("department_id"), {}),
    }
    named = {}
    for key, path in AGG_NAMES.items():
        dimension, name = path.removeprefix("$").split(".")
        named[key] = joined[dimension].get(name)
    return {**doc, **named}


def _cell(value: Any) -> Any:
    return str(value) if isinstance(value, ObjectId) else value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--format", choices=("csv", "xlsx", "pdf"), required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--source", choices=("read", "aggregation"), default="read")
    args = parser.parse_args()

    from app.config import get_settings
    from app.reports.reading.query import NAME_COLLATION

    settings = get_settings()
    # The driver's monitor waits as long as the server takes to answer: SecantusDB builds a
    # query's whole result before its first batch and answers no heartbeat meanwhile (a
    # 1,000,000-row range: over a minute), and a monitor timeout would cancel the read.
    client = MongoClient(settings.mongodb_url, connectTimeoutMS=900_000)
    coll = client[settings.mongodb_db]["enrollments"]
    if args.format == "pdf":
        from weasyprint import HTML  # imported before the clock starts, like a warm worker

    cursor: Any
    if args.source == "read":
        facts = _fact_read(args.rows)
        (read,) = facts.reads  # the same filter, so the same index, as the product's read
        fields: tuple[str, ...] = FACT_FIELDS
        names = _names(client[settings.mongodb_db]) if args.format == "pdf" else None
        wall0, cpu0 = time.perf_counter(), time.process_time()
        cursor = coll.find(read, facts.projection, batch_size=2000)
        if names is not None:
            # A PDF's cost is its layout, which grows with the text in its cells: the table
            # holds the names a reader sees (as the product's does), joined from dictionaries
            # loaded before the clock started, and the ids give way to them.
            fields = (*AGG_NAMES, *FACT_FIELDS[3:])
            cursor = (_with_names(doc, names) for doc in cursor)
    else:
        stages = aggregation(args.rows)
        fields = (*AGG_NAMES, *FACT_FIELDS[3:])
        hint = {"enrolled_at": 1}  # what the product hinted under the collation
        wall0, cpu0 = time.perf_counter(), time.process_time()
        cursor = coll.aggregate(
            stages, batchSize=2000, allowDiskUse=True, collation=NAME_COLLATION, hint=hint
        )
    n = 0
    if args.format == "csv":
        with open(args.out, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(fields)
            for doc in cursor:
                writer.writerow([doc.get(f) for f in fields])
                n += 1
    elif args.format == "xlsx":
        from xlsxwriter import Workbook

        wb = Workbook(args.out, {"constant_memory": True})
        ws = wb.add_worksheet()
        ws.write_row(0, 0, fields)
        for doc in cursor:
            n += 1
            # XlsxWriter takes no ObjectId: the ids are written as text.
            ws.write_row(n, 0, [_cell(doc.get(f)) for f in fields])
        wb.close()
    else:
        parts = ["<html><body><table><thead><tr>"]
        parts += [f"<th>{f}</th>" for f in fields]
        parts.append("</tr></thead><tbody>")
        for doc in cursor:
            if n >= args.rows:
                break
            cells = "".join(f"<td>{html.escape(str(doc.get(f, '')))}</td>" for f in fields)
            parts.append(f"<tr>{cells}</tr>")
            n += 1
        parts.append("</tbody></table></body></html>")
        HTML(string="".join(parts)).write_pdf(args.out)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "rows": n, "peak_mb": peak}))


if __name__ == "__main__":
    main()
