"""P9: a preview's latency, and a page of a job's rows near the end of a large result.

Against the real API and worker processes on the seeded bench database, over the range holding
every seeded enrollment (`--rows`):

- after a warm-up (two previews, 5 s apart: the API process reads the learners' name order),
  the first page (50 rows) of learner-progress previewed (a) as the manager of one department,
  (b) for one course, (c) for the whole organisation sorted by `-score`, a column no index
  serves; each 20 times, p50 and p95 of the answer time, and how many calls answered rows (200)
  or `preview-too-large` (422);
- `GET /jobs/{id}/rows` of a 100-row page near the end of that result stored as JSON Lines and
  as CSV (local storage), addressed by its cursor; 20 times each, p50 and p95, beside the first
  page's.

Targets (issue 24, on the 1,000,000-enrollment database): (a) and (b) p95 <= 1 s; (c) within
2 s, rows or 422; the rows page near the end <= 200 ms.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx

from bench import seed as seeding
from bench.common import api_client, percentile, run_job, running, start_api, start_worker
from bench.figures import ADMIN, API_PORT, Figure, emit, lp_report

PAGE = 50  # rows of a preview page
ROWS_PAGE = 100  # rows of a job's rows page


def _manager_client(port: int, department: str) -> httpx.Client:
    from app.config import get_settings
    from app.security import mint_token

    token = mint_token(
        get_settings(),
        sub="be0d00000000000000000009",
        name="Bench manager",
        email="manager@bench.example",
        roles=["manager"],
        department_ids=[department],
        ttl_seconds=6 * 3600,
    )
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )


def _time_calls(
    client: httpx.Client, method: str, url: str, calls: int, **request: Any
) -> tuple[list[float], Counter[int], Any]:
    times: list[float] = []
    statuses: Counter[int] = Counter()
    body: Any = None
    for _ in range(calls):
        started = time.perf_counter()
        response = client.request(method, url, **request)
        times.append(time.perf_counter() - started)
        statuses[response.status_code] += 1
        if response.status_code not in (200, 422):
            raise RuntimeError(
                f"{method} {url}: HTTP {response.status_code}: {response.text[:300]}"
            )
        body = response.json()
    return times, statuses, body


def _what(statuses: Counter[int], body: Any) -> str:
    parts = []
    if statuses[200]:
        parts.append(f"{statuses[200]}x rows of {body.get('rowCount', '?'):,}" if "rowCount" in body
                     else f"{statuses[200]}x rows")  # fmt: skip
    if statuses[422]:
        estimate = body.get("estimatedRows") if isinstance(body, dict) else None
        parts.append(f"{statuses[422]}x 422" + (f" (~{estimate:,} rows)" if estimate else ""))
    return ", ".join(parts)


def p9(rows: int, calls: int = 20, job_rows: bool = True) -> None:
    department = str(seeding.oid("department", 0))
    course = str(seeding.oid("course", 0))
    cases = [
        ("(a) one department, as its manager", "manager", lp_report("csv", rows), None, 1.0),
        ("(b) one course", "admin", lp_report("csv", rows, courseIds=[course]), None, 1.0),
        ("(c) organisation, sort -score", "org", lp_report("csv", rows), "-score", 2.0),
    ]
    with running([start_api(API_PORT), start_worker(0)]):
        clients = {
            "manager": _manager_client(API_PORT, department),
            # Callers of their own: each stays inside the per-user preview rate.
            "admin": api_client(API_PORT, "be0d0000000000000000000a"),
            "org": api_client(API_PORT, "be0d0000000000000000000b"),
        }
        try:
            # Warm-up, as P1's: the API process's caches (the learners' name order a large
            # preview reads its first page by, read in the background) before the clock.
            for _ in range(2):
                clients["manager"].post(
                    "/api/v1/reports/preview", json=cases[0][2], params={"limit": PAGE}
                )
                time.sleep(5)
            for label, who, report, sort, target in cases:
                params: dict[str, Any] = {"limit": PAGE, **({"sort": sort} if sort else {})}
                times, statuses, body = _time_calls(
                    clients[who], "POST", "/api/v1/reports/preview", calls, json=report,
                    params=params,
                )  # fmt: skip
                p50, p95 = percentile(times, 50), percentile(times, 95)
                emit(Figure(f"P9 {label} p50", f"{p50:.3f} s", _what(statuses, body), None,
                            "report", None))  # fmt: skip
                emit(Figure(f"P9 {label} p95", f"{p95:.3f} s", f"{calls} calls", None,
                            f"<= {target:g} s", p95 <= target))  # fmt: skip
            if job_rows:
                _rows_near_the_end(rows, calls)
        finally:
            for client in clients.values():
                client.close()


def _rows_near_the_end(rows: int, calls: int) -> None:
    from app.reports.previews.paging import rows_cursor

    with api_client(API_PORT, ADMIN) as owner:
        for fmt in ("json", "csv"):
            job = run_job(owner, lp_report(fmt, rows), poll=0.5).body
            total = int(job["result"]["rowCount"])
            url = f"/api/v1/reports/jobs/{job['id']}/rows"
            near_end = rows_cursor(job["id"], max(0, total - ROWS_PAGE))
            first, _, _ = _time_calls(owner, "GET", url, calls, params={"limit": ROWS_PAGE})
            deep, _, body = _time_calls(
                owner, "GET", url, calls, params={"limit": ROWS_PAGE, "cursor": near_end}
            )
            if len(body["rows"]) != min(ROWS_PAGE, total):
                raise RuntimeError(f"rows near the end: {len(body['rows'])} rows")
            p50, p95 = percentile(deep, 50), percentile(deep, 95)
            emit(Figure(f"P9 /rows {fmt} near end of {total:,} p50", f"{p50 * 1000:.1f} ms",
                        f"first page {percentile(first, 50) * 1000:.1f} ms", None, "report",
                        None))  # fmt: skip
            emit(Figure(f"P9 /rows {fmt} near end p95", f"{p95 * 1000:.1f} ms",
                        f"first page p95 {percentile(first, 95) * 1000:.1f} ms",
                        p95 / percentile(first, 95), "<= 200 ms", p95 <= 0.2))  # fmt: skip
