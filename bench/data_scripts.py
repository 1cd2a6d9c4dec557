"""P8: the data scripts, `scripts.seed_demo` against raw `insert_many` of the same documents and
`scripts.backfill_events` against bare bulk updates, at any number of learning events."""

from __future__ import annotations

import math
import re
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import PY, ROOT, bench_env, log
from bench.figures import Figure, emit

# Learning events the demo generator writes per enrollment, at least (measured 8.7 at 10,527
# enrollments, 9.6 at 105,264, 9.8 at 100,000); `enrollments_for` sizes a run from the events
# wanted with it, so a run writes that many or somewhat more (P8 prints the count).
EVENTS_PER_ENROLLMENT = 8.5
TARGET_EVENTS_PER_S = 10_000
TARGET_BACKFILL_RATIO = 0.8


def enrollments_for(events: int) -> int:
    return max(50, math.ceil(events / EVENTS_PER_ENROLLMENT))


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    return float(match.group(1).replace(",", "")) if match else 0.0


def _bare_inserts(db: Any, scale: int, events: int) -> float:
    """Raw `insert_many` (10,000 a call, unordered) of the generator's own legacy events into a
    collection with only its `_id` index; documents made outside the clock. Documents/s."""
    from scripts.demo_data import as_legacy, generate

    db.drop_collection("bare_events")
    data = generate(scale, 42, datetime(2026, 6, 15, tzinfo=UTC))
    written, seconds = 0, 0.0
    for _enrollments, batch in data.stream(10_000):
        docs = [as_legacy(e) for e in batch][: events - written]
        if not docs:
            break
        t0 = time.perf_counter()
        db.bare_events.insert_many(docs, ordered=False)
        seconds += time.perf_counter() - t0
        written += len(docs)
    db.drop_collection("bare_events")
    return written / seconds


def _bare_updates(db: Any, ids: list[Any]) -> float:
    """Bare bulk `UpdateOne` by `_id` ($set of one field), 1,000 a call. Updates/s."""
    from pymongo import UpdateOne

    t0 = time.perf_counter()
    for lo in range(0, len(ids), 1000):
        db.learning_events.bulk_write(
            [UpdateOne({"_id": i}, {"$set": {"bench_touch": 1}}) for i in ids[lo : lo + 1000]],
            ordered=False,
        )
    return len(ids) / (time.perf_counter() - t0)


def p8(scale: int) -> None:
    from pymongo import MongoClient

    from app.config import get_settings

    db_name = "bench_reports_p8"
    env = bench_env(MONGODB_DB=db_name)
    # The generator writes the events in their legacy shape (no denormalized ids, the course as
    # payload.courseId, COURSE_COMPLETED): the backfill's input, without a million updates to
    # make it.
    started = time.perf_counter()
    out = subprocess.run(
        [PY, "-m", "scripts.seed_demo", "--scale", str(scale), "--reset", "--no-progress",
         "--legacy-events"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"seed_demo failed: {out.stderr[-1500:]}")
    demo_seconds = time.perf_counter() - started
    log(out.stdout.strip().replace("\n", " | "))
    events = int(_number(r"([\d,]+) learning events", out.stdout))
    enrollments = int(_number(r"([\d,]+) enrollments", out.stdout))
    total_rows = int(_number(r"([\d,]+) rows in", out.stdout))
    load_seconds = _number(r"load ([\d.]+) s", out.stdout)
    index_seconds = _number(r"indexes built in ([\d.]+) s", out.stdout)
    client: MongoClient[dict[str, Any]] = MongoClient(get_settings().mongodb_url)
    db = client[db_name]
    try:
        bare_insert = _bare_inserts(db, scale, events)
        load_docs = (enrollments + events) / load_seconds
        emit(Figure(f"P8 demo generator load {events:,} events",
                    f"{events / load_seconds:,.0f} ev/s {load_docs:,.0f} docs/s",
                    f"{bare_insert:,.0f} docs/s raw", load_docs / bare_insert,
                    f">= {TARGET_EVENTS_PER_S:,} ev/s", events / load_seconds >= TARGET_EVENTS_PER_S))  # fmt: skip
        emit(Figure(f"P8 demo generator end to end {total_rows:,} docs",
                    f"{total_rows / demo_seconds:,.0f} docs/s",
                    f"indexes {index_seconds:.0f} s of {demo_seconds:.0f} s", None,
                    "report", None))  # fmt: skip
        ids = [d["_id"] for d in db.learning_events.find({}, {"_id": 1}).sort("_id", 1)]
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
        bare_update = _bare_updates(db, ids)
        ratio = backfill_rate / bare_update
        emit(Figure(f"P8 backfill {len(ids):,} events", f"{backfill_rate:,.0f} events/s",
                    f"{bare_update:,.0f} upd/s raw", ratio,
                    f">= {TARGET_BACKFILL_RATIO}x" if not left else "all filled",
                    ratio >= TARGET_BACKFILL_RATIO and not left))  # fmt: skip
    finally:
        client.drop_database(db_name)
        client.close()
