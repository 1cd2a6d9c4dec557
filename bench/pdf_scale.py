"""P3 without the database: the PDF pipeline against a single-process WeasyPrint table, on the
same rows made in memory (learner-progress's 13 columns, names in place of ids), so the layout
alone is compared. Baseline and product alternate, each in a fresh process.

    python -m bench.pdf_scale [--rows 5000] [--runs 3] [--chunk-rows N] [--processes N]
    python -m bench.pdf_scale --rows 50000 --runs 1 --no-baseline      # P3-50k, once

Prints one figure line each: the rate ratio (target >= 3x), the per-process layout rate (rows
per CPU second of the render processes: start-up and join included), the peak memory of the
product's process tree (the render processes included; and until the join started) and its
time (the join's beside it) and pages. A run prints one JSON line when started with ``--one``.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import psutil

from bench.common import MemorySampler, log

OUT = Path(os.environ.get("BENCH_DIR", ".data/bench")) / "pdf_scale"
STATUSES = ("completed", "in-progress", "not-started", "overdue")
DEPARTMENTS = ("Finance", "Operations", "Sales EMEA", "Customer Success", "Engineering")
COURSES = ("Data protection basics", "Fire safety", "Anti-bribery", "Leading remote teams")


def make_rows(n: int) -> list[tuple[Any, ...]]:
    """Learner-progress rows as the worker hands them to the PDF (names, not ids)."""
    start = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    rows = []
    for i in range(n):
        status = STATUSES[i % 4]
        enrolled = start + timedelta(minutes=37 * i)
        rows.append(
            (
                f"Learner {i:06d} Example",
                f"learner{i}@example.com",
                DEPARTMENTS[i % 5],
                f"C-{i % 40:03d}",
                COURSES[i % 4],
                status,
                float((i * 7) % 101),
                None if status == "not-started" else round((i * 13) % 1000 / 10, 1),
                enrolled,
                enrolled + timedelta(days=9) if status == "completed" else None,
                date(2026, 6, 1 + i % 28),
                (i * 11) % 600,
                status == "overdue",
            )
        )
    return rows


def columns() -> list[Any]:
    from app.reports.rendering import Column, ColumnType

    t = ColumnType
    spec = [
        ("learner", "Learner", t.STRING), ("email", "Email", t.STRING),
        ("department", "Department", t.STRING), ("courseCode", "Course code", t.STRING),
        ("course", "Course", t.STRING), ("status", "Status", t.STRING),
        ("progress", "Progress", t.PERCENT), ("score", "Score", t.NUMBER),
        ("enrolledAt", "Enrolled at", t.DATETIME), ("completedAt", "Completed at", t.DATETIME),
        ("dueDate", "Due", t.DATE), ("minutes", "Minutes spent", t.INTEGER),
        ("overdue", "Overdue", t.BOOLEAN),
    ]  # fmt: skip
    return [Column(key, label, kind) for key, label, kind in spec]


def baseline(rows: int, out: Path) -> dict[str, float]:
    """One WeasyPrint document of the whole table, default styles, untagged (bare_dump's)."""
    from weasyprint import HTML  # before the clock, like a warm worker

    data = make_rows(rows)
    keys = [c.key for c in columns()]
    wall0 = time.perf_counter()
    parts = ["<html><body><table><thead><tr>", *(f"<th>{k}</th>" for k in keys)]
    parts.append("</tr></thead><tbody>")
    for row in data:
        cells = "".join(f"<td>{html.escape(str('' if v is None else v))}</td>" for v in row)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody></table></body></html>")
    document = HTML(string="".join(parts)).render()
    document.write_pdf(out)
    wall = time.perf_counter() - wall0
    return {
        "wall": wall,
        "rows": rows,
        "pages": len(document.pages),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "render_cpu": wall,
    }  # fmt: skip (one process: its layout time is its wall)


def product(rows: int, out: Path, chunk_rows: int, processes: int) -> dict[str, float]:
    """The worker's path: rows added in fetch-sized batches to a ``PdfSink``, then finished."""
    from app.reports.rendering import PdfSink, RenderContext

    data = make_rows(rows)
    cols = columns()
    context = RenderContext(
        title="Learner progress", report_type="learner-progress", format="pdf",
        timezone="UTC", generated_at=datetime.now(UTC), total_rows=rows,
    )  # fmt: skip
    me = psutil.Process()
    with MemorySampler(os.getpid()) as memory:
        wall0 = time.perf_counter()
        sink = PdfSink(out, cols, context, chunk_rows=chunk_rows, processes=processes,
                       max_rows=rows)  # fmt: skip
        children_cpu: dict[int, float] = {}
        joined_at: list[float] = []  # when the join started (every chunk laid out)
        laid_out_peak: list[float] = []  # the tree's peak until then

        async def run() -> None:
            for start in range(0, rows, 2000):  # the worker's fetch batches
                await sink.add(data[start : start + 2000])
                await asyncio.sleep(0)
            finishing = asyncio.create_task(sink.finish(context))
            while not finishing.done():  # render processes' CPU, read while they live
                if not joined_at and sink.pdf._joining:
                    joined_at.append(time.perf_counter())
                    laid_out_peak.append(memory.peak_tree_mb)
                for child in me.children(recursive=True):
                    try:
                        times = child.cpu_times()
                        children_cpu[child.pid] = times.user + times.system
                    except psutil.Error:
                        pass
                await asyncio.sleep(0.2)
            await finishing

        asyncio.run(run())
        end = time.perf_counter()
        wall = end - wall0
    return {"wall": wall, "rows": rows, "pages": sink.pages, "peak_mb": memory.peak_tree_mb,
            "join": end - joined_at[0] if joined_at else 0.0,
            "peak_before_join_mb": laid_out_peak[0] if laid_out_peak else 0.0,
            "render_cpu": sum(children_cpu.values()),
            "render_processes": len(children_cpu)}  # fmt: skip


def _one(kind: str, rows: int, chunk_rows: int, processes: int) -> dict[str, float]:
    OUT.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "bench.pdf_scale", "--one", kind, "--rows", str(rows),
            "--chunk-rows", str(chunk_rows), "--processes", str(processes)]  # fmt: skip
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pdf_scale")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=None, help="default: the setting")
    parser.add_argument("--processes", type=int, default=None, help="default: the setting")
    parser.add_argument("--no-baseline", action="store_true", help="the product only (P3-50k)")
    parser.add_argument("--one", choices=("baseline", "product"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from app.config import get_settings

    settings = get_settings()
    chunk_rows = args.chunk_rows or settings.pdf_chunk_rows
    processes = args.processes or settings.render_processes
    if args.one:
        out = OUT / f"{args.one}-{args.rows}.pdf"
        if args.one == "baseline":
            result = baseline(args.rows, out)
        else:
            result = product(args.rows, out, chunk_rows, processes)
        print(json.dumps(result))
        return 0
    load = os.getloadavg()
    log(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores; "
        f"chunk rows {chunk_rows}, {processes} render processes")  # fmt: skip
    bare: list[dict[str, float]] = []
    prod: list[dict[str, float]] = []
    for i in range(args.runs):
        order = ("baseline", "product") if i % 2 == 0 else ("product", "baseline")
        for kind in order:
            if kind == "baseline" and args.no_baseline:
                continue
            result = _one(kind, args.rows, chunk_rows, processes)
            (bare if kind == "baseline" else prod).append(result)
            join = f", join {result['join']:.1f} s" if "join" in result else ""
            log(f"run {i + 1} {kind}: {result['wall']:.1f} s, {result['pages']:.0f} pages, "
                f"peak {result['peak_mb']:.0f} MB, render CPU {result['render_cpu']:.1f} s{join}")  # fmt: skip
    rate = args.rows / median(r["wall"] for r in prod)
    per_process = args.rows / median(r["render_cpu"] for r in prod)
    peak = max(r["peak_mb"] for r in prod)
    label = f"P3 PDF {args.rows:,} rows (in memory)"
    if bare:
        brate = args.rows / median(r["wall"] for r in bare)
        print(f"{label} rate: {rate:.0f} rows/s, baseline {brate:.0f} rows/s, "
              f"{rate / brate:.2f}x (target >= 3x) {'PASS' if rate / brate >= 3 else 'FAIL'}")  # fmt: skip
        print(f"{label} baseline peak {max(r['peak_mb'] for r in bare):.0f} MB, "
              f"pages {bare[0]['pages']:.0f}")  # fmt: skip
    print(f"{label} per-process layout rate: {per_process:.0f} rows per render-process CPU "
          f"second ({processes} processes)")  # fmt: skip
    before_join = max(r["peak_before_join_mb"] for r in prod)
    print(f"{label} peak memory (worker + render processes): {peak:.0f} MB "
          f"(target <= 700 MB) {'PASS' if peak <= 700 else 'FAIL'}; "
          f"{before_join:.0f} MB until the join started")  # fmt: skip
    print(f"{label} time {median(r['wall'] for r in prod):.1f} s (the join: "
          f"{median(r['join'] for r in prod):.1f} s), pages {prod[0]['pages']:.0f}, "
          f"load average at the start {load[0]:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
