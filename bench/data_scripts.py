"""P8: the data scripts, `scripts.seed_demo` against raw `insert_many` and
`scripts.backfill_events` against bare bulk updates."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

from bench import seed as seeding
from bench.common import PY, ROOT, bench_env
from bench.figures import Figure, emit


def p8(scale: int) -> None:
    from pymongo import MongoClient, UpdateOne

    from app.config import get_settings

    db_name = "bench_reports_p8"
    env = bench_env(MONGODB_DB=db_name)
    started = time.perf_counter()
    out = subprocess.run(
        [PY, "-m", "scripts.seed_demo", "--scale", str(scale), "--reset", "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"seed_demo failed: {out.stderr[-1500:]}")
    demo_seconds = time.perf_counter() - started
    match = re.search(r"([\d,]+) learning events", out.stdout)
    events = int(match.group(1).replace(",", "")) if match else 0
    rows_match = re.search(r"([\d,]+) rows in ([\d.]+) s", out.stdout)
    total_rows = int(rows_match.group(1).replace(",", "")) if rows_match else 0
    client: MongoClient[dict[str, Any]] = MongoClient(get_settings().mongodb_url)
    db = client[db_name]
    try:
        # Baseline: raw insert_many of the same number of plain event documents.
        db.drop_collection("bare_events")
        docs = [seeding._event(i, 1000) for i in range(events)]
        t0 = time.perf_counter()
        for lo in range(0, len(docs), 10_000):
            db.bare_events.insert_many(docs[lo : lo + 10_000], ordered=False)
        bare_insert = events / (time.perf_counter() - t0)
        db.drop_collection("bare_events")
        emit(Figure(f"P8 demo generator {events:,} events", f"{total_rows / demo_seconds:,.0f} docs/s",
                    f"{bare_insert:,.0f} docs/s raw", (total_rows / demo_seconds) / bare_insert,
                    "report", None))  # fmt: skip
        # Make every event "legacy", the shape stored before the denormalized ids existed:
        # the course only as payload.courseId, no ids of our own, old type spelling.
        ids = [d["_id"] for d in db.learning_events.find({}, {"_id": 1})]
        db.learning_events.update_many(
            {}, [{"$set": {"payload.courseId": {"$toString": "$course_id"}}}]
        )
        db.learning_events.update_many(
            {}, {"$unset": {"course_id": "", "department_id": "", "enrollment_id": ""}}
        )
        db.learning_events.update_many(
            {"type": "course-completed"}, {"$set": {"type": "COURSE_COMPLETED"}}
        )
        db.backfill_checkpoints.delete_many({})
        t0 = time.perf_counter()
        out = subprocess.run(
            [PY, "-m", "scripts.backfill_events", "--restart", "--no-progress"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        backfill_rate = len(ids) / (time.perf_counter() - t0)
        if out.returncode != 0:
            raise RuntimeError(f"backfill failed: {out.stderr[-1500:]}")
        left = db.learning_events.count_documents({"course_id": None})
        # Baseline: the writes alone, as bare bulk UpdateOne by _id in batches of 1,000.
        t0 = time.perf_counter()
        for lo in range(0, len(ids), 1000):
            db.learning_events.bulk_write(
                [UpdateOne({"_id": i}, {"$set": {"bench_touch": 1}}) for i in ids[lo : lo + 1000]],
                ordered=False,
            )
        bare_update = len(ids) / (time.perf_counter() - t0)
        emit(Figure(f"P8 backfill {len(ids):,} events", f"{backfill_rate:,.0f} events/s",
                    f"{bare_update:,.0f} upd/s raw", backfill_rate / bare_update,
                    "report" if not left else "all filled", None if not left else False))  # fmt: skip
    finally:
        client.drop_database(db_name)
        client.close()
