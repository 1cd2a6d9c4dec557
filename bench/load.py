"""P6: status polling against a bare endpoint, then a mixed load of many clients."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    PY,
    api_client,
    log,
    median,
    percentile,
    run_job,
    running,
    start,
    start_api,
    start_worker,
    user_sub,
    wait_http,
)
from bench.figures import ADMIN, API_PORT, BARE_PORT, SMALL_REPORT, Figure, emit


async def _load(
    port: int, seconds: float, clients: int, pick: Callable[[int, dict[str, Any]], Any]
) -> dict[str, Any]:
    import httpx

    from bench.common import token

    stats: dict[str, Any] = {"lat": {}, "status": {}, "errors": []}
    deadline = time.perf_counter() + seconds

    async def client_loop(n: int) -> None:
        sub = user_sub(1000 + n)
        state: dict[str, Any] = {"jobs": [], "rng": random.Random(n)}
        headers = {"Authorization": f"Bearer {token(sub)}"}
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30, limits=limits
        ) as http:
            while time.perf_counter() < deadline:
                kind, method, url, body = pick(n, state)
                t0 = time.perf_counter()
                try:
                    resp = await http.request(method, url, json=body)
                    code = resp.status_code
                except httpx.HTTPError as exc:
                    stats["errors"].append(f"{kind}: {type(exc).__name__}")
                    continue
                stats["lat"].setdefault(kind, []).append(time.perf_counter() - t0)
                key = f"{kind}:{code}"
                stats["status"][key] = stats["status"].get(key, 0) + 1
                if kind == "create" and code == 202:
                    state["jobs"].append(resp.json()["id"])
                elif not (code < 400 or (kind == "create" and code == 429)):
                    stats["errors"].append(f"{kind}: HTTP {code} {resp.text[:120]}")

    await asyncio.gather(*(client_loop(n) for n in range(clients)))
    return stats


def p6(seconds: float, poll_seconds: float, runs: int, clients: int = 50) -> None:
    with running([start_api(API_PORT), start_worker(0)]), api_client(API_PORT, ADMIN) as admin:
        job_id = run_job(admin, SMALL_REPORT).job_id
        bare = start("bare-api", [PY, "-m", "bench.baselines.bare_api", "--port", str(BARE_PORT)])
        with running([bare]):
            wait_http(f"http://127.0.0.1:{BARE_PORT}/healthz", bare)

            def poll_product(n: int, s: dict[str, Any]) -> Any:
                return ("status", "GET", f"/api/v1/reports/jobs/{job_id}", None)

            def poll_bare(n: int, s: dict[str, Any]) -> Any:
                return ("status", "GET", f"/jobs/{job_id}", None)

            prod_rps, bare_rps = [], []
            for i in range(runs):
                for port, pick, out in ((BARE_PORT, poll_bare, bare_rps),
                                        (API_PORT, poll_product, prod_rps)):  # fmt: skip
                    st = asyncio.run(_load(port, poll_seconds, clients, pick))
                    out.append(len(st["lat"].get("status", [])) / poll_seconds)
                log(
                    f"P6 polling run {i + 1}: product {prod_rps[-1]:.0f}/s bare {bare_rps[-1]:.0f}/s"
                )

        def mixed(n: int, s: dict[str, Any]) -> Any:
            r = s["rng"].random()
            if r < 0.1 or not s["jobs"]:
                return ("create", "POST", "/api/v1/reports/jobs", SMALL_REPORT)
            if r < 0.75:
                return ("status", "GET", f"/api/v1/reports/jobs/{s['rng'].choice(s['jobs'])}", None)
            return ("list", "GET", "/api/v1/reports/jobs?limit=20", None)

        log(f"P6 mixed load: {clients} clients for {seconds:.0f} s")
        st = asyncio.run(_load(API_PORT, seconds, clients, mixed))
    all_lat = [x for v in st["lat"].values() for x in v]
    p99 = percentile(all_lat, 99)
    errors = st["errors"]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(st["status"].items()))
    log(f"P6 responses: {counts}; errors: {errors[:5]}")
    emit(Figure(f"P6 {clients} clients {seconds:.0f}s errors", f"{len(errors)} errors",
                f"{len(all_lat)} requests", None, "0 (429 allowed)", not errors))  # fmt: skip
    emit(Figure("P6 p99 latency (mixed)", f"{p99 * 1000:.0f} ms",
                f"p50 {percentile(all_lat, 50) * 1000:.0f} ms", None, "report", None))  # fmt: skip
    rps, brps = median(prod_rps), median(bare_rps)
    emit(Figure("P6 status-poll throughput", f"{rps:.0f} req/s", f"{brps:.0f} req/s",
                rps / brps, ">= 0.5x", rps / brps >= 0.5))  # fmt: skip
