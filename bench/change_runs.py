"""P1-CHANGES: what a change report adds to a whole P1 run (the real API and worker, the seeded
database), measured beside the same run without it.

The same learner-progress CSV request runs as a plain job and as the run-now of a schedule
with `changes: {mode: both}` (its rows marked in the file, fingerprints sorted and merge-joined
with the last delivered run's, the next baseline and the list of changes stored, the decision
in the commit). The schedule's first run is its baseline; the runs measured after it are
compared runs. Plain and compared runs alternate, so a load that drifts touches both alike.
The bench database's rows do not change between runs: every row is compared and found
unchanged (`bench.changes` measures the tracker alone with 2 % of the rows changed).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.common import (
    MemorySampler,
    Proc,
    api_client,
    cpu_seconds,
    log,
    running,
    start_api,
    start_worker,
    wait_job,
)
from bench.figures import ADMIN, API_PORT, Figure, emit, lp_report, med, product_run

P1_PEAK_MB = 150  # P1's bound on the worker's peak memory


def _schedule(client: httpx.Client, rows: int) -> str:
    report = lp_report("csv", rows)
    body: dict[str, Any] = {
        "name": "Bench: changes",
        "reportType": report["reportType"],
        "format": "csv",
        "parameters": report["parameters"],
        "frequency": "daily",
        "timeOfDay": "05:00",
        "timezone": "UTC",
        # A delivery must be committed for the baseline to move (sending it is the outbox's
        # work after the run, not measured here).
        "recipients": ["bench-reader@bench.example"],
        "changes": {"mode": "both", "unchanged": "send"},
    }
    resp = client.post("/api/v1/reports/schedules", json=body)
    if resp.status_code != 201:
        raise RuntimeError(f"schedule create: HTTP {resp.status_code}: {resp.text[:300]}")
    return str(resp.json()["id"])


def _run_now(worker: Proc, client: httpx.Client, schedule_id: str) -> dict[str, Any]:
    cpu0 = cpu_seconds(worker.pid)
    started = time.perf_counter()
    with MemorySampler(worker.pid) as mem:
        resp = client.post(f"/api/v1/reports/schedules/{schedule_id}/run-now")
        if resp.status_code != 202:
            raise RuntimeError(f"run-now: HTTP {resp.status_code}: {resp.text[:300]}")
        run = wait_job(client, str(resp.json()["id"]), started, poll=0.5)
    if run.status != "completed":
        raise RuntimeError(f"run {run.job_id} ended {run.status}: {str(run.body)[:500]}")
    runs = client.get(f"/api/v1/reports/schedules/{schedule_id}/runs").json()["items"]
    [shown] = [r for r in runs if r["id"] == run.job_id]
    said = (shown.get("evaluation") or {}).get("changes") or {}
    if not said:
        raise RuntimeError(f"run {run.job_id} has no change evaluation: {str(shown)[:500]}")
    return {
        "wall": run.seconds,
        "cpu": cpu_seconds(worker.pid) - cpu0,
        "rows": float((run.body.get("result") or {}).get("rowCount") or 0),
        "peak_mb": mem.peak_self_mb,
        "first": bool(said.get("firstRun")),
        "unchanged": said.get("unchanged"),
    }


def p1_changes(rows: int, runs: int) -> None:
    with (
        running([start_api(API_PORT), start_worker(0)]) as (_api, worker),
        api_client(API_PORT, ADMIN) as client,
    ):
        schedule_id = _schedule(client, rows)
        first = _run_now(worker, client, schedule_id)  # the baseline (and the warm-up)
        log(f"P1-CHANGES baseline run {first['wall']:.1f}s {first['peak_mb']:.0f} MB")
        plain, compared = [], []
        for i in range(runs):
            plain.append(product_run(worker, API_PORT, lp_report("csv", rows)))
            compared.append(_run_now(worker, client, schedule_id))
            if compared[-1]["first"]:
                raise RuntimeError("the baseline did not move: the run was not compared")
            log(f"P1-CHANGES run {i + 1}: plain {plain[-1]['wall']:.1f}s "
                f"{plain[-1]['peak_mb']:.0f} MB, with changes {compared[-1]['wall']:.1f}s "
                f"{compared[-1]['peak_mb']:.0f} MB ({compared[-1]['unchanged']:,} "
                "unchanged)")  # fmt: skip
    n = med(compared, "rows")
    wall, bwall = med(compared, "wall"), med(plain, "wall")
    emit(Figure(f"P1-CHANGES {int(n):,} rows wall", f"{wall:.2f} s", f"{bwall:.2f} s P1",
                wall / bwall, "<= 1.3x", wall / bwall <= 1.3))  # fmt: skip
    cpu, bcpu = med(compared, "cpu"), med(plain, "cpu")
    emit(Figure("P1-CHANGES worker CPU", f"{cpu:.1f} s", f"{bcpu:.1f} s P1", cpu / bcpu,
                "report", None))  # fmt: skip
    peak, bpeak = med(compared, "peak_mb"), med(plain, "peak_mb")
    emit(Figure("P1-CHANGES peak worker RSS", f"{peak:.0f} MB", f"{bpeak:.0f} MB P1", None,
                f"<= {P1_PEAK_MB} MB", peak <= P1_PEAK_MB))  # fmt: skip
