"""Baseline: the minimum that produces the same report rows — a bare synchronous PyMongo cursor
over the learner-progress aggregation (the very pipeline the product runs), piped straight into
`csv.writer`, raw XlsxWriter (constant-memory mode) or one single-process WeasyPrint document
with a plain HTML table.

    python -m bench.baselines.bare_dump --format csv|xlsx|pdf --rows N --out PATH

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

from pymongo import MongoClient


def pipeline(rows: int) -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    from app.reports.types.learner_progress import LEARNER_PROGRESS
    from app.reports.types.query import NAME_COLLATION
    from app.security import DataScope
    from bench.seed import report_range

    params = {"dateRange": report_range(rows), "timezone": "UTC"}
    resolved = LEARNER_PROGRESS.resolve(params, DataScope(), datetime.now(UTC))
    p, s = LEARNER_PROGRESS.typed(resolved.parameters), resolved.scope
    # The same query as the product: pipeline, collation and index hint.
    return LEARNER_PROGRESS.pipeline(p, s), NAME_COLLATION, LEARNER_PROGRESS.index_hint(p, s)


FIELDS = ("learnerName", "learnerEmail", "departmentName", "courseCode", "courseTitle", "status",
          "progress_percent", "score", "enrolled_at", "due_at", "completed_at",
          "time_spent_minutes", "last_activity_at")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--format", choices=("csv", "xlsx", "pdf"), required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from app.config import get_settings

    settings = get_settings()
    stages, collation, hint = pipeline(args.rows)
    if args.format == "pdf":
        stages.append({"$limit": args.rows})
    client = MongoClient(settings.mongodb_url)
    coll = client[settings.mongodb_db]["enrollments"]
    if args.format == "pdf":
        from weasyprint import HTML  # imported before the clock starts, like a warm worker

    wall0, cpu0 = time.perf_counter(), time.process_time()
    cursor = coll.aggregate(
        stages, batchSize=2000, allowDiskUse=True, collation=collation, hint=hint
    )
    n = 0
    if args.format == "csv":
        with open(args.out, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(FIELDS)
            for doc in cursor:
                writer.writerow([doc.get(f) for f in FIELDS])
                n += 1
    elif args.format == "xlsx":
        from xlsxwriter import Workbook

        wb = Workbook(args.out, {"constant_memory": True})
        ws = wb.add_worksheet()
        ws.write_row(0, 0, FIELDS)
        for doc in cursor:
            n += 1
            ws.write_row(n, 0, [doc.get(f) for f in FIELDS])
        wb.close()
    else:
        parts = ["<html><body><table><thead><tr>"]
        parts += [f"<th>{f}</th>" for f in FIELDS]
        parts.append("</tr></thead><tbody>")
        for doc in cursor:
            cells = "".join(f"<td>{html.escape(str(doc.get(f, '')))}</td>" for f in FIELDS)
            parts.append(f"<tr>{cells}</tr>")
            n += 1
        parts.append("</tbody></table></body></html>")
        HTML(string="".join(parts)).write_pdf(args.out)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "rows": n, "peak_mb": peak}))


if __name__ == "__main__":
    main()
