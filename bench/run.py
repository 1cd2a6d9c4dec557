"""Runs the performance figures P1–P8 against the real API and worker processes and prints one
line per figure: the figure, the baseline measured in the same run, the ratio, the target and
PASS / FAIL. See docs/performance.md.

    python -m bench.run [--rows 50000] [--small-rows 5000] [--runs 3] [--only P1,P4]
                        [--p6-seconds 60] [--clean] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    BENCH_DIR,
    PY,
    ROOT,
    MemorySampler,
    Proc,
    api_client,
    apply_bench_env,
    bench_env,
    cpu_seconds,
    create_job,
    log,
    median,
    percentile,
    run_baseline,
    run_job,
    running,
    start,
    start_api,
    start_worker,
    user_sub,
    wait_http,
    wait_job,
)

apply_bench_env()

from bench import seed as seeding  # noqa: E402

API_PORT, BARE_PORT = 8110, 8111
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


# -- P1 / P2 -------------------------------------------------------------------------------------


AGGREGATION_INFO_ROWS = 5000  # the old aggregation baseline, run once at this size (INFO)


def p1_p2(fmt: str, rows: int, small: int, runs: int, aggregation_info: bool = False) -> None:
    name = "P1 CSV" if fmt == "csv" else "P2 Excel"
    target = 1.5 if fmt == "csv" else 1.3
    with running([start_api(API_PORT), start_worker(0)]) as (_api, worker):
        product_run(worker, API_PORT, lp_report(fmt, small))  # warm-up (imports, caches)
        bare, prod, prod_small = [], [], []
        for i in range(runs):
            bare.append(bare_run(fmt, rows))
            prod.append(product_run(worker, API_PORT, lp_report(fmt, rows)))
            prod_small.append(product_run(worker, API_PORT, lp_report(fmt, small)))
            log(f"{name} run {i + 1}: read limit {bare[-1]['wall']:.1f}s "
                f"product {prod[-1]['wall']:.1f}s (cpu {prod[-1]['cpu']:.1f}s, "
                f"{prod[-1]['peak_mb']:.0f} MB) @{small:,} {prod_small[-1]['wall']:.1f}s "
                f"{prod_small[-1]['peak_mb']:.0f} MB")  # fmt: skip
        agg_rows = min(rows, AGGREGATION_INFO_ROWS)
        if aggregation_info:
            agg = bare_run(fmt, agg_rows, "aggregation")
            agg_prod = product_run(worker, API_PORT, lp_report(fmt, agg_rows))
    n = med(prod, "rows")
    wall, bwall = med(prod, "wall"), med(bare, "wall")
    emit(Figure(f"{name} {int(n):,} rows wall", f"{wall:.2f} s", f"{bwall:.2f} s read",
                wall / bwall, f"<= {target}x", wall / bwall <= target))  # fmt: skip
    if aggregation_info:
        emit(Figure(f"{name} {agg_rows:,} rows vs old aggregation", f"{agg_prod['wall']:.2f} s",
                    f"{agg['wall']:.2f} s agg", agg_prod["wall"] / agg["wall"], "info",
                    None))  # fmt: skip
    peak, peak_small = med(prod, "peak_mb"), med(prod_small, "peak_mb")
    cpu_row = med(prod, "cpu") / n * 1e6
    bcpu_row = med(bare, "cpu") / med(bare, "rows") * 1e6
    # The read limit's process does no joins and no ordering: the worker's CPU per row above
    # it is what joining and ordering in the worker cost (reported, not targeted).
    emit(Figure(f"{name} worker CPU/row", f"{cpu_row:.1f} us", f"{bcpu_row:.1f} us read",
                cpu_row / bcpu_row, "report", None))  # fmt: skip
    emit(Figure(f"{name} peak worker RSS", f"{peak:.0f} MB",
                f"{med(bare, 'peak_mb'):.0f} MB read", None, "<= 150 MB", peak <= 150))  # fmt: skip
    emit(Figure(f"{name} constant memory", f"{peak:.0f} MB @{int(n):,}",
                f"{peak_small:.0f} MB @{small:,}", peak / peak_small, "<= 1.2x",
                peak / peak_small <= 1.2))  # fmt: skip


# -- P3 --------------------------------------------------------------------------------------


def p3(runs: int, cap: int = 5000) -> None:
    with running([start_api(API_PORT), start_worker(0)]) as (_api, worker):
        product_run(worker, API_PORT, lp_report("pdf", 1000), tree=True)  # warm-up
        bare, prod = [], []
        for i in range(runs):
            bare.append(bare_run("pdf", cap))
            prod.append(product_run(worker, API_PORT, lp_report("pdf", cap), tree=True))
            log(f"P3 run {i + 1}: bare {bare[-1]['wall']:.1f}s product {prod[-1]['wall']:.1f}s")
    rate = med(prod, "rows") / med(prod, "wall")
    brate = med(bare, "rows") / med(bare, "wall")
    emit(Figure(f"P3 PDF {cap:,} rows rate", f"{rate:.0f} rows/s", f"{brate:.0f} rows/s",
                rate / brate, ">= 2x", rate / brate >= 2))  # fmt: skip
    emit(Figure("P3 PDF peak memory (worker+render)", f"{med(prod, 'peak_tree_mb'):.0f} MB",
                f"{med(bare, 'peak_mb'):.0f} MB bare", None, "bounded (report)", None))  # fmt: skip


# -- P4 / P5 ---------------------------------------------------------------------------------


def p4(jobs: int = 50) -> None:
    with running([start_api(API_PORT), start_worker(0)]), api_client(API_PORT, ADMIN) as client:
        rows = run_job(client, SMALL_REPORT).body["result"]["rowCount"]
        times = [run_job(client, SMALL_REPORT, poll=0.02).seconds for _ in range(jobs)]
    p50, p95 = percentile(times, 50), percentile(times, 95)
    enrollments = asyncio.run(seeding.enrollments())
    emit(Figure(f"P4 {rows}-row job p50 ({jobs} jobs)", f"{p50:.2f} s",
                f"{enrollments:,} enrollments", None, "<= 0.5 s", p50 <= 0.5))  # fmt: skip
    emit(Figure(f"P4 {rows}-row job p95", f"{p95:.2f} s", "-", None, "<= 1 s", p95 <= 1.0))


def _batch(jobs: int) -> float:
    """Submits `jobs` jobs at once (5 per user, the quota; three in four small, the rest 1,000
    to 20,000 rows) and waits for all."""
    users = [user_sub(100 + u) for u in range((jobs + 4) // 5)]
    clients = [api_client(API_PORT, u) for u in users]
    try:
        started = time.perf_counter()
        ids = [(clients[j // 5], create_job(clients[j // 5], _mixed_report(j)))
               for j in range(jobs)]  # fmt: skip
        for client, job_id in ids:
            run = wait_job(client, job_id, started, poll=0.05)
            if run.status != "completed":
                raise RuntimeError(f"P5 job {job_id} ended {run.status}")
        return time.perf_counter() - started
    finally:
        for c in clients:
            c.close()


MIXED_ROWS = (1000, 5000, 20000)  # P5's larger jobs (every fourth job is one of these)


def _mixed_report(j: int) -> dict[str, Any]:
    return SMALL_REPORT if j % 4 else lp_report("csv", MIXED_ROWS[(j // 4) % len(MIXED_ROWS)])


def p5(runs: int, jobs: int = 40) -> None:
    results: dict[int, list[float]] = {1: [], 2: []}
    db_cpu: dict[int, list[float]] = {1: [], 2: []}
    server = database_server_pid()
    with running([start_api(API_PORT)]):
        for i in range(runs):
            for n in (1, 2):
                with running([start_worker(w) for w in range(n)]):
                    with api_client(API_PORT, ADMIN) as client:
                        run_job(client, SMALL_REPORT)  # every worker is up once one job ran
                        time.sleep(1.0)
                    cpu0 = cpu_seconds(server) if server else 0.0
                    results[n].append(_batch(jobs))
                    if server:
                        db_cpu[n].append((cpu_seconds(server) - cpu0) / results[n][-1])
                log(f"P5 run {i + 1}: {n} worker(s) {results[n][-1]:.1f}s")
    one, two = median(results[1]), median(results[2])
    emit(Figure(f"P5 {jobs} mixed jobs, 2 workers", f"{two:.2f} s", f"{one:.2f} s (1 worker)",
                one / two, ">= 1.5x faster", one / two >= 1.5))  # fmt: skip
    if server:
        share1, share2 = median(db_cpu[1]), median(db_cpu[2])
        emit(Figure("P5 database server CPU share", f"{share2:.0%} (2 workers)",
                    f"{share1:.0%} (1 worker)", None, "report", None))  # fmt: skip
        emit(Figure("P5 database server CPU per job", f"{share2 * two / jobs * 1000:.0f} ms",
                    f"{share1 * one / jobs * 1000:.0f} ms (1 worker)", None, "report",
                    None))  # fmt: skip


def database_server_pid() -> int | None:
    """The process listening on the database port (for its CPU time), if it runs here."""
    from app.config import get_settings

    port = int(get_settings().mongodb_url.rsplit(":", 1)[-1].split("/")[0])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


# -- P6 ----------------------------------------------------------------------------------------


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


# -- P7 ----------------------------------------------------------------------------------------


def _plan_stages(plan: Any, found: list[str]) -> None:
    if isinstance(plan, dict):
        stage = plan.get("stage")
        if stage in ("COLLSCAN", "IXSCAN", "IDHACK", "EXPRESS_IXSCAN", "EOF", "COUNT_SCAN"):
            index = plan.get("indexName")
            found.append(f"{stage}({index})" if index else stage)
        for value in plan.values():
            _plan_stages(value, found)
    elif isinstance(plan, list):
        for value in plan:
            _plan_stages(value, found)


# Parameters whose read has a shape of its own, explained next to the type's defaults.
P7_VARIANTS: dict[str, list[dict[str, Any]]] = {"assessment-results": [{"groupBy": "course"}]}


def _p7_cases(types: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """(label, definition, parameters beyond the defaults) of every read P7 explains."""
    cases = []
    for key, definition in types.items():
        cases.append((key, definition, {}))
        for extra in P7_VARIANTS.get(key, []):
            label = ", ".join(f"{k}={v}" for k, v in extra.items())
            cases.append((f"{key} ({label})", definition, extra))
    return cases


async def _p7_async(rows: int) -> list[tuple[str, str, str, bool]]:
    from datetime import UTC, datetime

    from app.config import get_settings
    from app.db import Database
    from app.reports.types import REPORT_TYPES
    from app.security import DataScope

    database = Database(get_settings())
    await database.connect()
    db = database.db
    out = []
    try:
        for key, definition, extra in _p7_cases(REPORT_TYPES):
            schema = definition.parameters_schema().get("properties", {})
            params: dict[str, Any] = {"timezone": "UTC", **extra}
            if "dateRange" in schema:
                params["dateRange"] = seeding.report_range(rows)
            resolved = definition.resolve(params, DataScope(), datetime.now(UTC))
            # The read the worker would run: pipeline and aggregate options of the type's plan.
            plan = await definition.plan(definition.typed(resolved.parameters), resolved.scope)
            coll_name = definition.source.get_pymongo_collection().name
            if plan.facts is not None:
                ok, plans = await _explain_facts(db, coll_name, plan.facts)
                out.append((key, coll_name, "; ".join(plans), ok))
                continue
            pipeline, options = plan.pipeline, dict(plan.options)
            cmd: dict[str, Any] = {"explain": True}
            if options.get("collation"):
                cmd["collation"] = options["collation"]
            if options.get("hint"):
                cmd["hint"] = dict(options["hint"])
            plans = []
            ok = True
            explain = await db.command("aggregate", coll_name, pipeline=pipeline, **cmd)
            found: list[str] = []
            _plan_stages(explain, found)
            if coll_name in ("enrollments", "learning_events") and (
                "COLLSCAN" in found or not found
            ):
                ok = False
            plans.append(f"{coll_name}: {', '.join(dict.fromkeys(found)) or 'no plan'}")
            # $lookup sub-pipelines over the big collections: explain their leading $match for
            # one value of the join key (explain does not descend into them).
            for stage in pipeline:
                lookup = stage.get("$lookup")
                if not lookup or lookup.get("from") not in ("enrollments", "learning_events"):
                    continue
                sub = lookup.get("pipeline") or []
                match = dict(sub[0]["$match"]) if sub and "$match" in sub[0] else {}
                if lookup.get("foreignField"):
                    sample = await db[lookup["from"]].find_one({}, {lookup["foreignField"]: 1})
                    match[lookup["foreignField"]] = (sample or {}).get(lookup["foreignField"])
                sub_explain = await db.command(
                    "aggregate", lookup["from"], pipeline=[{"$match": match}], explain=True
                )
                sub_found: list[str] = []
                _plan_stages(sub_explain, sub_found)
                if "COLLSCAN" in sub_found or not sub_found:
                    ok = False
                plans.append(
                    f"$lookup {lookup['as']}->{lookup['from']}: "
                    f"{', '.join(dict.fromkeys(sub_found)) or 'no plan'}"
                )
            out.append((key, coll_name, "; ".join(plans), ok))
    finally:
        await database.close()
    return out


async def _explain_facts(db: Any, coll_name: str, facts: Any) -> tuple[bool, list[str]]:
    """A fact read's plans: each of its reads (find with its filter, projection and sort), and
    the dimension fetches (`_id $in` over a sample of ids) the worker joins with."""
    ok, plans = True, []
    for read in facts.reads[:3]:
        find: dict[str, Any] = {"find": coll_name, "filter": read, "projection": facts.projection}
        if facts.sort:
            find["sort"] = dict(facts.sort)
        explain = await db.command("explain", find)
        found: list[str] = []
        _plan_stages(explain, found)
        if "COLLSCAN" in found or not found:
            ok = False
        plans.append(f"{coll_name} find: {', '.join(dict.fromkeys(found)) or 'no plan'}")
    if len(facts.reads) > 3:
        plans.append(f"(+{len(facts.reads) - 3} reads of the same shape)")
    for join in facts.joins:
        # Ids from the report's own first read (an index range), not a scan of the collection.
        first = (
            await db[coll_name].find(facts.reads[0], {join.field: 1}).to_list(5)
            if facts.reads
            else []
        )
        sample = [d[join.field] for d in first if d.get(join.field) is not None]
        explain = await db.command(
            "explain",
            {"find": join.collection, "filter": {"_id": {"$in": sample}},
             "projection": dict.fromkeys(join.fields, 1)},
        )  # fmt: skip
        found = []
        _plan_stages(explain, found)
        if "COLLSCAN" in found or not found:
            ok = False
        plans.append(f"join {join.collection} by _id $in: {', '.join(dict.fromkeys(found))}")
    return ok, plans


def p7(rows: int) -> None:
    for key, _coll, summary, ok in asyncio.run(_p7_async(rows)):
        print(f"   plan {key}: {summary}", flush=True)
        emit(Figure(f"P7 {key} uses indexes", "IXSCAN" if ok else "COLLSCAN", "-", None,
                    "no COLLSCAN", ok))  # fmt: skip


# -- P8 ----------------------------------------------------------------------------------------


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


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rows", type=int, default=50_000, help="P1/P2 rows (default 50000)")
    parser.add_argument("--small-rows", type=int, default=None,
                        help="constant-memory comparison rows (default rows / 10)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=3, help="repetitions per figure (median)")
    parser.add_argument("--only", default="P1,P2,P3,P4,P5,P6,P7,P8", help="figures to run")
    parser.add_argument("--p6-seconds", type=float, default=60.0, help="P6 mixed-load duration")
    parser.add_argument("--poll-seconds", type=float, default=10.0,
                        help="P6 status-polling comparison duration per run")  # fmt: skip
    parser.add_argument("--demo-scale", type=int, default=2000,
                        help="P8 demo generator enrollments (default 2000)")  # fmt: skip
    parser.add_argument("--events", type=int, default=20_000, help="learning events for P7")
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

    need_rows = max(args.rows if only & {"P1", "P2"} else 0, 5000, small)
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
        if "P2" in only:
            phase("P2", lambda: p1_p2("xlsx", args.rows, small, args.runs, args.aggregation_info))
        if "P3" in only:
            phase("P3", lambda: p3(args.runs))
        if "P4" in only:
            phase("P4", lambda: p4())
        if "P5" in only:
            phase("P5", lambda: p5(args.runs))
        if "P6" in only:
            phase("P6", lambda: p6(args.p6_seconds, args.poll_seconds, args.runs))
        if "P7" in only:
            phase("P7", lambda: p7(need_rows))
        if "P8" in only:
            phase("P8", lambda: p8(args.demo_scale))
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
