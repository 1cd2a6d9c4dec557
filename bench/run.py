"""Runs the performance figures P1–P10 against the real API and worker processes and prints one
line per figure: the figure, the baseline measured in the same run, the ratio, the target and
PASS / FAIL. See docs/performance.md.

    python -m bench.run [--rows 50000] [--small-rows 5000] [--runs 3] [--only P1,P4]
                        [--p6-seconds 60] [--demo-events N] [--clean] [--json PATH]

The figures live in their own modules: ``files`` (P1–P3), ``jobs`` (P4, P5), ``load`` (P6),
``plans`` (P7), ``data_scripts`` (P8), ``previews`` (P9), ``read_limit`` (P10), with what they share in ``figures``; this module is the
command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, apply_bench_env, log

# Before any figure module (and so the seeding and the app's settings) is imported.
apply_bench_env()

from bench import seed as seeding  # noqa: E402
from bench.change_runs import p1_changes  # noqa: E402
from bench.data_scripts import enrollments_for, p8  # noqa: E402
from bench.figures import FIGURES  # noqa: E402
from bench.files import p1_p2, p3, p3_50k  # noqa: E402
from bench.jobs import p4, p5  # noqa: E402
from bench.load import p6  # noqa: E402
from bench.plans import p7  # noqa: E402
from bench.previews import p9  # noqa: E402
from bench.read_limit import P10_TYPES, p10  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rows", type=int, default=50_000, help="P1/P2 rows (default 50000)")
    parser.add_argument("--small-rows", type=int, default=None,
                        help="constant-memory comparison rows (default rows / 10)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=3, help="repetitions per figure (median)")
    parser.add_argument("--only", default="P1,P2,P3,P3-50K,P4,P5,P6,P7,P8,P9,P10",
                        help="figures to run")  # fmt: skip
    parser.add_argument("--p6-seconds", type=float, default=60.0, help="P6 mixed-load duration")
    parser.add_argument("--poll-seconds", type=float, default=10.0,
                        help="P6 status-polling comparison duration per run")  # fmt: skip
    parser.add_argument("--demo-scale", type=int, default=2000,
                        help="P8 demo generator enrollments (default 2000, ~20,000 events)")  # fmt: skip
    parser.add_argument("--demo-events", type=int, default=None,
                        help="P8 at this many learning events or more (sets the enrollments; "
                        "1000000 for the issue's figure)")  # fmt: skip
    parser.add_argument("--p10-types", default=",".join(P10_TYPES),
                        help="P10 report types (default: all but learner-progress, which is P1)")  # fmt: skip
    parser.add_argument("--events", type=int, default=20_000, help="learning events for P7")
    parser.add_argument(
        "--p9-previews-only",
        action="store_true",
        help="P9 without the job rows figures (which run two jobs of --rows)",
    )
    parser.add_argument("--p9-calls", type=int, default=20,
                        help="P9 calls per preview and rows figure (p50 / p95 over them)")  # fmt: skip
    parser.add_argument("--aggregation-info", action="store_true",
                        help="also time the old server-side-join aggregation (information; it "
                        "walks the whole index on SecantusDB: minutes at 1,000,000 rows)")  # fmt: skip
    parser.add_argument("--clean", action="store_true", help="drop the bench database at the end")
    parser.add_argument("--json", default=str(BENCH_DIR / "results.json"), help="results file")
    args = parser.parse_args(argv)
    small = args.small_rows or max(1000, args.rows // 10)
    only = {f.strip().upper() for f in args.only.split(",")}
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    phases: dict[str, float] = {}

    def phase(name: str, fn: Callable[[], None]) -> None:
        t0 = time.perf_counter()
        if name != "seed" and (left := asyncio.run(seeding.settle_jobs())):
            log(f"cancelled {left} jobs left queued by an earlier phase")
        log(f"{name} ...")
        fn()
        phases[name] = time.perf_counter() - t0
        log(f"{name} took {phases[name]:.0f} s")

    need_rows = max(args.rows if only & {"P1", "P1-CHANGES", "P2", "P9", "P10"} else 0, 5000, small)
    seeded: dict[str, Any] = {}

    def do_seed() -> None:
        seeded.update(asyncio.run(seeding.seed(need_rows, args.events)))
        if seeded["inserted"]:
            log(f"seeded {seeded['inserted']:,} documents at {seeded['docs_per_s']:,.0f} docs/s")
        else:
            log("seed data already present (bench_meta markers)")

    print(f"== bench: rows {args.rows:,} (small {small:,}), runs {args.runs}", flush=True)
    phase("seed", do_seed)
    try:
        if "P1" in only:
            phase("P1", lambda: p1_p2("csv", args.rows, small, args.runs, args.aggregation_info))
        if "P1-CHANGES" in only:
            phase("P1-changes", lambda: p1_changes(args.rows, args.runs))
        if "P2" in only:
            phase("P2", lambda: p1_p2("xlsx", args.rows, small, args.runs, args.aggregation_info))
        if "P3" in only:
            phase("P3", lambda: p3(args.runs))
        if "P3-50K" in only:
            phase("P3-50k", p3_50k)
        if "P4" in only:
            phase("P4", lambda: p4())
        if "P5" in only:
            phase("P5", lambda: p5(args.runs))
        if "P6" in only:
            phase("P6", lambda: p6(args.p6_seconds, args.poll_seconds, args.runs))
        if "P7" in only:
            phase("P7", lambda: p7(need_rows))
        if "P8" in only:
            demo = enrollments_for(args.demo_events) if args.demo_events else args.demo_scale
            phase("P8", lambda: p8(demo))
        if "P10" in only:
            p10_types = tuple(t.strip() for t in args.p10_types.split(",") if t.strip())
            phase("P10", lambda: p10(args.rows, args.runs, p10_types))
        if "P9" in only:
            phase("P9", lambda: p9(args.rows, args.p9_calls, not args.p9_previews_only))
    finally:
        Path(args.json).write_text(
            json.dumps(
                {"args": vars(args), "seed": seeded, "phases": phases,
                 "figures": [asdict(f) for f in FIGURES]},
                indent=2, default=str,
            )
        )  # fmt: skip
        if args.clean:
            asyncio.run(seeding.drop())
            log("bench database dropped")
    print("== summary", flush=True)
    for fig in FIGURES:
        print(fig.line())
    print("== phases: " + ", ".join(f"{k} {v:.0f}s" for k, v in phases.items()))
    return 1 if any(f.ok is False for f in FIGURES) else 0


if __name__ == "__main__":
    sys.exit(main())
