"""What change detection costs: the same learner-progress rows written as CSV with and without
a change report's tracker (fingerprints and each row's `change` mark in the rows' pass, external sort, merge-join with the
previous run's fingerprints, both files stored), each in a fresh process so its peak RSS is its
own.

    python -m bench.changes --rows 1000000

Rows are made in memory batch by batch (never all at once), so the process holds what a worker
holds: one batch, the tracker's sort run and the merge. The second run of each pair compares
with the first's fingerprints, with 2 % of the rows changed (status and progress), 0.5 % left
and 0.5 % new. The "without" side writes the same CSV through `csv.writer`: a lower bound of a
whole run (which also reads the database, joins and sorts), so the ratio printed is an upper
bound of the tracker's share of a P1 run; the absolute overhead is compared with P1's time.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.reports.schedules.changes.models import Baseline
from app.reports.schedules.changes.runs import marked
from app.reports.schedules.changes.tracker import ChangeTargets, ChangeTracker
from app.reports.types import get_report_type
from app.reports.types.changes import change_spec
from app.storage.local import LocalStorage

BATCH = 2000
STATUSES = ("enrolled", "in-progress", "completed", "failed", "withdrawn")


def _batches(count: int, generation: int) -> Iterator[list[tuple[Any, ...]]]:
    """`count` rows (the second generation: 2 % changed, 0.5 % gone, 0.5 % new)."""
    rng = random.Random(7)
    start = datetime(2026, 1, 1)
    batch: list[tuple[Any, ...]] = []
    total = count + (count // 200 if generation else 0)
    for i in range(total):
        status = STATUSES[i % 5]
        progress = 100.0 if status == "completed" else float(i % 100)
        roll = rng.random()
        if generation and i < count and roll < 0.005:
            continue  # left
        if generation and roll < 0.02:
            status, progress = "completed", 100.0
        enrolled = start + timedelta(minutes=i)
        batch.append(
            (
                f"Learner {i:07d}",
                f"learner{i}@example.test",
                "Department 01",
                f"C{i % 50:03d}",
                f"Course {i % 50}",
                status,
                progress,
                80.0 if status == "completed" else None,
                enrolled,
                enrolled + timedelta(days=30),
                None,
                i % 600,
                enrolled,
                False,
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def _pass(
    rows: int, tracked: bool, work: Path, generation: int, baseline: str | None
) -> dict[str, Any]:
    columns = [c.key for c in get_report_type("learner-progress").columns]
    spec = change_spec("learner-progress")
    assert spec is not None
    storage = LocalStorage(work / "storage")
    scratch = Path(tempfile.mkdtemp(dir=work))
    tracker = ChangeTracker(spec, columns, scratch) if tracked else None
    started = time.perf_counter()
    if tracker is not None:  # pinned and indexed: each row is marked as it is written
        before = Baseline(baseline, "previous", datetime(2026, 1, 1)) if baseline else None
        await tracker.pin(storage, before, marks=True)
    with (work / f"out-{generation}.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        for batch in _batches(rows, generation):
            marks = tracker.add(batch) if tracker is not None else None
            writer.writerows(batch if marks is None else marked(batch, marks))
    outcome = None
    if tracker is not None:
        targets = ChangeTargets(f"baselines/g{generation}.jsonl.gz", f"changes/g{generation}.csv")
        outcome, _, _ = await tracker.compare(storage, targets)
    seconds = time.perf_counter() - started
    shutil.rmtree(scratch, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    said = None if outcome is None else outcome.model_dump(include={"added", "left", "changed"})
    return {"seconds": seconds, "peak_mb": peak_mb, "outcome": said}


def _child(args: tuple[int, bool, str, int, str | None], queue: Any) -> None:
    rows, tracked, work, generation, baseline = args
    queue.put(asyncio.run(_pass(rows, tracked, Path(work), generation, baseline)))


def _measure(args: tuple[int, bool, str, int, str | None]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(args, queue))
    process.start()
    result: dict[str, Any] = queue.get()
    process.join()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-changes-"))
    try:
        plain = [_measure((options.rows, False, str(work), g, None)) for g in (0, 1)]
        first = _measure((options.rows, True, str(work), 0, None))
        second = _measure((options.rows, True, str(work), 1, "baselines/g0.jsonl.gz"))
        size = (work / "storage" / "baselines" / "g0.jsonl.gz").stat().st_size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "rows": options.rows,
        "csv_only_seconds": [round(p["seconds"], 2) for p in plain],
        "csv_only_peak_mb": [round(p["peak_mb"], 1) for p in plain],
        "tracked_first_run_seconds": round(first["seconds"], 2),
        "tracked_second_run_seconds": round(second["seconds"], 2),
        "tracked_peak_mb": [round(first["peak_mb"], 1), round(second["peak_mb"], 1)],
        "second_run_outcome": second["outcome"],
        "baseline_file_mb": round(size / 1e6, 1),
        "overhead_seconds_second_run": round(second["seconds"] - plain[1]["seconds"], 2),
        "peak_mb_added": round(second["peak_mb"] - plain[1]["peak_mb"], 1),
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
