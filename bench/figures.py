"""What every figure uses: the ports, the figure lines and their list, the learner-progress
report at a size, one product run (wall, CPU, peak memory of the worker) and one baseline run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bench import seed as seeding
from bench.common import (
    BENCH_DIR,
    MemorySampler,
    Proc,
    api_client,
    cpu_seconds,
    median,
    run_baseline,
    run_job,
    user_sub,
)

# BENCH_API_PORT lets two benches share a machine (each with its own database and Redis db).
API_PORT = int(os.environ.get("BENCH_API_PORT", "8110"))
BARE_PORT = API_PORT + 1
ADMIN = user_sub(1)


@dataclass
class Figure:
    figure: str
    value: str
    baseline: str
    ratio: float | None
    target: str
    ok: bool | None  # None: reported only

    def line(self) -> str:
        verdict = "INFO" if self.ok is None else "PASS" if self.ok else "FAIL"
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}x"
        return (
            f"{self.figure:<34} {self.value:<22} baseline {self.baseline:<22} "
            f"ratio {ratio:<7} target {self.target:<16} {verdict}"
        )


FIGURES: list[Figure] = []


def emit(fig: Figure) -> None:
    FIGURES.append(fig)
    print(fig.line(), flush=True)


def lp_report(fmt: str, rows: int, **params: Any) -> dict[str, Any]:
    return {
        "reportType": "learner-progress",
        "format": fmt,
        "parameters": {"dateRange": seeding.report_range(rows), "timezone": "UTC", **params},
    }


SMALL_REPORT = lp_report(
    "csv",
    1000,
    departmentIds=[str(seeding.oid("department", 0))],
    statuses=["enrolled"],
)


def product_run(
    worker: Proc, port: int, report: dict[str, Any], tree: bool = False
) -> dict[str, float]:
    with api_client(port, ADMIN) as client:
        cpu0 = cpu_seconds(worker.pid, children=tree)
        with MemorySampler(worker.pid) as mem:
            run = run_job(client, report, poll=0.5)  # light polling: the server is shared
        cpu = cpu_seconds(worker.pid, children=tree) - cpu0
    result = run.body.get("result") or {}
    return {
        "wall": run.seconds,
        "cpu": cpu,
        "rows": float(result.get("rowCount") or 0),
        "peak_mb": mem.peak_self_mb,
        "peak_tree_mb": mem.peak_tree_mb,
    }


def bare_run(fmt: str, rows: int, source: str = "read") -> dict[str, float]:
    """`source="read"`: the read limit (a bare find() of the same documents, no joins);
    "aggregation": the aggregation with server-side joins the product ran before (INFO)."""
    out = BENCH_DIR / f"bare.{fmt}"
    return run_baseline(
        ["bench.baselines.bare_dump", "--format", fmt, "--rows", str(rows), "--out", str(out),
         "--source", source]
    )  # fmt: skip


def med(runs: list[dict[str, float]], key: str) -> float:
    return median([r[key] for r in runs])
