"""`GET /api/v1/reports/jobs/{id}/rows`: a completed csv or json job's stored rows as JSON pages,
at any depth from the row index beside the file, on local storage and on S3; the same access
and expiry as the download. A JSON Lines file parses and holds what the CSV of the same request
holds."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta
from typing import Any, cast

import httpx
import pytest

from app.audit.models import AuditEvent
from app.common.schemas import encode_cursor
from app.common.time import utcnow
from app.main import create_app
from app.reports.execution import JobExecutor
from app.reports.jobs.models import ReportJob
from app.reports.schedules import repository as schedules
from app.reports.tasks import WorkerContext, expire_files
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.cells import csv_text
from tests.helpers.jobs import insert_enrollments
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
YEAR = {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}
ROWS = 10_000


def report(fmt: str) -> dict[str, Any]:
    return {
        "reportType": "learner-progress",
        "format": fmt,
        "parameters": {"dateRange": YEAR, "timezone": "Europe/Berlin"},
    }


async def _walk(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    limit: int,
    *,
    back: bool = False,
    cursor: str | None = None,
) -> list[dict[str, Any]]:
    """Every page from `cursor` (None: the first page) to one end."""
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
    while True:
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        cursor = page["previousCursor"] if back else page["nextCursor"]
        if not cursor:
            return pages
        params = {"limit": limit, "cursor": cursor}


@pytest.fixture
async def big_jobs(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> dict[str, str]:
    """A 10,000-row learner-progress report as CSV and as JSON Lines (one learner each, the
    time spent numbering them)."""
    dept = await f.department("Ops", code="OPS")
    course = await f.course("BIG1", title="Big")
    await insert_enrollments(course, dept, ROWS, spread=timedelta(minutes=1))
    headers = auth("admin", sub="reader")
    jobs = {}
    for fmt in ("csv", "json"):
        created = await client.post(JOBS, json=report(fmt), headers=headers)
        assert created.status_code == 202, created.text
        jobs[fmt] = created.json()["id"]
    await run_worker(timeout=240)
    return jobs


async def test_ten_thousand_rows_page_both_ways_without_gap_or_repeat(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    big_jobs: dict[str, str],
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = auth("admin", sub="reader")
    walked: dict[str, list[dict[str, Any]]] = {}
    for fmt, job_id in big_jobs.items():
        url = f"{JOBS}/{job_id}/rows"
        forward = await _walk(client, url, headers, 700)
        rows = [r for p in forward for r in p["rows"]]
        assert len(rows) == ROWS and forward[0]["rowCount"] == ROWS
        assert [p["firstRow"] for p in forward] == list(range(0, ROWS, 700))
        assert sorted(r["timeSpentMinutes"] for r in rows) == list(range(ROWS))
        assert forward[0]["previousCursor"] is None and forward[-1]["nextCursor"] is None

        # Back from the last page, in pages of another size: the first page back ends where
        # the page after it begins, so nothing is read twice.
        last = forward[-1]
        backward = await _walk(
            client, url, headers, 900, back=True, cursor=forward[-2]["nextCursor"]
        )
        assert backward[0]["firstRow"] == last["firstRow"]
        again = [r for p in reversed(backward) for r in p["rows"]]
        assert again == rows
        assert [p["firstRow"] for p in backward][-2:] == [800, 0]
        assert len(backward[-1]["rows"]) == 800
        walked[fmt] = rows

    # The JSON Lines job holds what the CSV job holds, and its file parses line by line.
    assert walked["json"] == walked["csv"]
    csv_file = await client.get(f"{JOBS}/{big_jobs['csv']}/download", headers=headers)
    header, *cells = list(csv.reader(io.StringIO(csv_file.content.decode())))
    keys = [c["key"] for c in forward[0]["columns"]]
    assert [c["label"] for c in forward[0]["columns"]] == header
    assert [[csv_text(r[k]) for k in keys] for r in walked["csv"]] == cells
    json_file = await client.get(f"{JOBS}/{big_jobs['json']}/download", headers=headers)
    first, *lines = json_file.content.decode().split("\n")[:-1]
    assert json.loads(first)["rowCount"] == ROWS
    assert [json.loads(line) for line in lines] == walked["json"]

    # At any depth a page is one ranged read of about the same size (plus the small index).
    read: list[int] = []
    ranged = resources.storage.read_range

    async def counting(key: str, start: int, end: int | None = None) -> bytes:
        data = await ranged(key, start, end)
        read.append(len(data))
        return data

    monkeypatch.setattr(resources.storage, "read_range", counting)
    for job_id in big_jobs.values():
        job = await ReportJob.get(job_id)
        assert job and job.result and job.result.row_index_key
        sizes = []
        for cursor in (None, _cursor_at(job_id, ROWS - 100)):
            read.clear()
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = await client.get(f"{JOBS}/{job_id}/rows", params=params, headers=headers)
            assert page.status_code == 200 and len(page.json()["rows"]) == 100
            assert len(read) == 2  # the index, then the rows' range
            sizes.append(read[-1])
        top, deep = sizes
        assert deep < 2 * top and deep < job.result.size_bytes / 5, (job.format, sizes)


def _cursor_at(job_id: str, row: int) -> str:
    return encode_cursor({"j": job_id, "r": row})


async def test_rows_follow_the_download_rules(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, resources: Resources
) -> None:
    dept = await f.department("Ops", code="OPS")
    course = await f.course("C1", title="One")
    await insert_enrollments(course, dept, 30, spread=timedelta(minutes=1))
    owner = auth("manager", sub="owner", departments=[str(dept.id)])
    ids = {}
    for fmt in ("csv", "xlsx"):
        created = await client.post(JOBS, json=report(fmt), headers=owner)
        assert created.status_code == 202, created.text
        ids[fmt] = created.json()["id"]
    early = await client.get(f"{JOBS}/{ids['csv']}/rows", headers=owner)
    assert early.status_code == 409 and early.json()["code"] == "job-not-ready"
    await run_worker()

    url = f"{JOBS}/{ids['csv']}/rows"
    assert (await client.get(url, headers=owner)).json()["rowCount"] == 30
    stranger = auth("manager", sub="stranger", departments=[str(dept.id)])
    assert (await client.get(url, headers=stranger)).status_code == 404
    xlsx = await client.get(f"{JOBS}/{ids['xlsx']}/rows", headers=owner)
    assert xlsx.status_code == 409 and xlsx.json()["code"] == "job-rows-unavailable"
    for bad in ("nope", _cursor_at(ids["xlsx"], 0)):
        wrong = await client.get(url, params={"cursor": bad}, headers=owner)
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "cursor"
    # The manager lost the department: no rows, as no download.
    moved = auth("manager", sub="owner", departments=[str((await f.department("X")).id)])
    assert (await client.get(url, headers=moved)).status_code == 403

    events = [e async for e in _audit("job.rows-read")]
    assert len(events) == 1 and events[0]["details"]["rows"] == 30

    await ReportJob.get_pymongo_collection().update_one(
        {"_id": (await ReportJob.get(ids["csv"])).id},  # type: ignore[union-attr]
        {"$set": {"expires_at": utcnow() - timedelta(minutes=1)}},
    )
    assert await expire_files(cast(WorkerContext, {"resources": resources})) >= 1
    gone = await client.get(url, headers=owner)
    assert gone.status_code == 410


async def _audit(action: str) -> Any:
    for event in await AuditEvent.find({"action": action, "outcome": "allowed"}).to_list():
        yield event.model_dump()


async def test_rows_are_read_by_range_from_s3(s3_resources: Resources, auth: TokenFactory) -> None:
    dept = await f.department("Ops", code="OPS")
    course = await f.course("C1", title="One")
    await insert_enrollments(course, dept, 2500, spread=timedelta(minutes=1))
    headers = auth("admin", sub="s3-reader")
    app = create_app(s3_resources.settings, resources=s3_resources)
    async with app.router.lifespan_context(app), api_client(app) as s3_client:
        for fmt in ("json", "csv"):
            created = await s3_client.post(JOBS, json=report(fmt), headers=headers)
            assert created.status_code == 202, created.text
            job_id = created.json()["id"]
            await JobExecutor(
                s3_resources, "test-worker", asyncio.Event(), delivers=schedules.delivers
            ).run(job_id)
            job = await ReportJob.get(job_id)
            assert job and job.result and job.result.row_index_key
            assert await s3_resources.storage.exists(job.result.row_index_key)
            page = await s3_client.get(
                f"{JOBS}/{job_id}/rows",
                params={"cursor": _cursor_at(job_id, 2450), "limit": 100},
                headers=headers,
            )
            assert page.status_code == 200, page.text
            body = page.json()
            assert body["firstRow"] == 2450 and len(body["rows"]) == 50
            assert body["nextCursor"] is None and body["previousCursor"]
            first = await s3_client.get(f"{JOBS}/{job_id}/rows", headers=headers)
            minutes = [r["timeSpentMinutes"] for r in first.json()["rows"] + body["rows"]]
            assert len(set(minutes)) == 150
