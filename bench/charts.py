"""What the charts cost: the same rows written with and without them, through the code a job
runs (`Charting.add` beside the rows, then the Excel writer's "Charts" sheet, or the PDF's page
one drawn by vl-convert in its render process).

    python -m bench.charts --xlsx-rows 200000 --pdf-rows 5000

P2 (Excel) and P3 (PDF) read from the database first; this measures the part the charts change
(accumulating in the same pass, and drawing), on learner-progress rows made in memory, so the
ratio it prints is an upper bound of the charts' share of a whole P2 / P3 run (the read only
adds time to both sides).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.reports.rendering import RenderContext, XlsxRowWriter, XlsxSink
from app.reports.rendering.pdf import render_pdf
from app.reports.rendering.pdf.charts import charts_html
from app.reports.types import get_report_type

STATUSES = ("enrolled", "in-progress", "completed", "failed", "withdrawn")
DEPARTMENTS = [f"Department {i:02d}" for i in range(40)]


def _rows(count: int) -> list[tuple[Any, ...]]:
    rng = random.Random(7)
    start = datetime(2026, 1, 1)
    rows = []
    for i in range(count):
        status = rng.choice(STATUSES)
        enrolled = start + timedelta(minutes=i)
        rows.append(
            (
                f"Learner {i:07d}",
                f"learner{i}@example.test",
                rng.choice(DEPARTMENTS),
                f"C{i % 50:03d}",
                f"Course {i % 50}",
                status,
                100.0 if status == "completed" else float(rng.randint(0, 99)),
                float(rng.randint(40, 100)) if status == "completed" else None,
                enrolled,
                enrolled + timedelta(days=30),
                enrolled + timedelta(days=9) if status == "completed" else None,
                rng.randint(0, 600),
                enrolled + timedelta(days=2),
                False,
            )
        )
    return rows


def _context(fmt: str) -> RenderContext:
    return RenderContext(
        title="Learner progress",
        report_type="learner-progress",
        format=fmt,
        timezone="UTC",
        generated_at=datetime.now(UTC),
    )


def _charted(rows: list[tuple[Any, ...]], batch: int, charts: bool) -> tuple[Any, float]:
    definition = get_report_type("learner-progress")
    resolved = {"report_type": "learner-progress", "now": "2026-03-20T00:00:00Z"}
    began = time.perf_counter()
    specs = []
    if charts:
        charting = definition.charting(
            definition.typed(
                {**resolved, "date_range": _RANGE, "timezone": "UTC", "department_ids": None}
            )
        )
        for i in range(0, len(rows), batch):
            charting.add(rows[i : i + batch])
        specs = charting.specs("en")
    return specs, time.perf_counter() - began


_RANGE = {
    "preset": "custom",
    "from": "2026-01-01",
    "to": "2026-12-31",
    "start": "2026-01-01T00:00:00Z",
    "end": "2027-01-01T00:00:00Z",
    "timezone": "UTC",
}


async def _xlsx(rows: list[tuple[Any, ...]], charts: bool, directory: Path) -> float:
    columns = get_report_type("learner-progress").columns
    began = time.perf_counter()
    specs, _ = _charted(rows, 2000, charts)
    writer = XlsxRowWriter(directory / f"p2-{charts}.xlsx", columns, _context("xlsx"))
    sink = XlsxSink(writer)
    for i in range(0, len(rows), 2000):
        await sink.add(rows[i : i + 2000])
    await sink.finish(replace(_context("xlsx"), charts=list(specs)))
    return time.perf_counter() - began


async def _pdf(rows: list[tuple[Any, ...]], charts: bool, directory: Path) -> float:
    columns = get_report_type("learner-progress").columns
    began = time.perf_counter()
    specs, _ = _charted(rows, 2000, charts)
    context = replace(_context("pdf"), charts=list(specs), total_rows=len(rows))
    await render_pdf(
        directory / f"p3-{charts}.pdf", columns, rows, context, chunk_rows=1000, processes=2
    )
    return time.perf_counter() - began


def _draw_svg(specs: list[Any]) -> tuple[float, float]:
    """Page one's charts drawn twice in a fresh process: the first time (vl-convert starts its
    engine) and again."""
    began = time.perf_counter()
    charts_html(specs)
    first = time.perf_counter() - began
    began = time.perf_counter()
    charts_html(specs)
    return first, time.perf_counter() - began


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--xlsx-rows", type=int, default=200_000)
    parser.add_argument("--pdf-rows", type=int, default=5_000)
    parser.add_argument("--accumulate-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="pairs, alternating which side goes first; the "
        "fastest of each side is compared (a shared machine's load comes and goes)",
    )
    args = parser.parse_args()
    rows = _rows(max(args.xlsx_rows, args.pdf_rows, args.accumulate_rows))
    _, accumulate = _charted(rows[: args.accumulate_rows], 2000, True)
    print(
        f"charts accumulated over {args.accumulate_rows:,} rows in the same pass: "
        f"{accumulate:.2f} s ({accumulate / args.accumulate_rows * 1e6:.2f} µs/row)"
    )
    specs, _ = _charted(rows[:5000], 2000, True)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        first, again = pool.submit(_draw_svg, specs).result()
    print(f"PDF page one's charts as SVG: {first:.2f} s in a new process, {again:.3f} s after")
    with tempfile.TemporaryDirectory(prefix="bench-charts-") as tmp:
        directory = Path(tmp)
        sides = (("P2 xlsx", _xlsx, args.xlsx_rows), ("P3 pdf", _pdf, args.pdf_rows))
        for name, run, count in sides:
            if not count:
                continue
            times: dict[bool, list[float]] = {False: [], True: []}
            for pair in range(args.runs):
                for charts in (False, True) if pair % 2 == 0 else (True, False):
                    times[charts].append(await run(rows[:count], charts, directory))
            without, with_charts = min(times[False]), min(times[True])
            print(
                f"{name} {count:,} rows: without charts {without:.2f} s, with charts "
                f"{with_charts:.2f} s (fastest of {args.runs}; all: {times}), "
                f"ratio {with_charts / without:.3f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
