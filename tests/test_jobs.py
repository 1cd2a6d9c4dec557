"""Report jobs end to end: the API, the worker and the files, against the real servers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta
from typing import Any

import httpx
import openpyxl
import pytest
from beanie import PydanticObjectId
from pypdf import PdfReader

from app.common.schemas import encode_cursor
from app.common.time import utcnow
from app.main import create_app
from app.reports.execution import JobExecutor
from app.reports.formats import FORMATS
from app.reports.jobs import quota, repository
from app.reports.jobs.models import IdempotencyRecord, JobStatus, ReportJob
from app.reports.jobs.requests import request_hash
from app.reports.schedules import repository as schedules
from app.reports.tasks import expire_files, reap
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.jobs import stored_job, stored_job_id
from tests.helpers.tasks import worker_context
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
RANGE = {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}


@pytest.fixture
async def org(resources: Resources) -> dict[str, Any]:
    """Two departments (A with sub-department A1, and B), learners and enrollments in each."""
    a = await f.department("Alpha", code="ALPHA")
    a1 = await f.department("Alpha One", code="ALPHA1", parent=a)
    b = await f.department("Bravo", code="BRAVO")
    course = await f.course("SEC-101", title="Security basics", mandatory=True)
    people = {}
    for dept, names in ((a, ["Ada", "Alan"]), (a1, ["Anita"]), (b, ["Boris", "Bea"])):
        for name in names:
            learner = await f.user(name, dept=dept)
            people[name] = learner
            await f.enrollment(
                learner,
                course,
                enrolled_at=f.dt(2026, 3, 1, 9),
                status="completed" if name.startswith("A") else "in-progress",
                completed_at=f.dt(2026, 3, 5, 9) if name.startswith("A") else None,
                score=90.0 if name.startswith("A") else None,
                progress_percent=100.0 if name.startswith("A") else 40.0,
            )
    manager = await f.user("Maria Manager", dept=a, roles=["manager"])
    return {"a": a, "a1": a1, "b": b, "course": course, "people": people, "manager": manager}


def manager_headers(auth: TokenFactory, org: dict[str, Any]) -> dict[str, str]:
    return auth(
        "manager", sub=str(org["manager"].id), name="Maria Manager", departments=[str(org["a"].id)]
    )


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], fmt: str = "csv", **params: Any
) -> httpx.Response:
    body = {
        "reportType": "learner-progress",
        "format": fmt,
        "parameters": {"dateRange": RANGE, **params},
    }
    return await client.post(JOBS, json=body, headers=headers)


async def _download(
    client: httpx.AsyncClient, job_id: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.get(f"{JOBS}/{job_id}/download", headers=headers)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf", "json"])
async def test_manager_report_end_to_end_shows_only_its_departments(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], run_worker: Any, fmt: str
) -> None:
    headers = manager_headers(auth, org)
    created = await _create(client, headers, fmt)
    assert created.status_code == 202, created.text
    job = created.json()
    assert created.headers["location"] == f"{JOBS}/{job['id']}"
    assert job["status"] == "queued"
    assert job["resolvedParameters"]

    await run_worker()

    done = (await client.get(f"{JOBS}/{job['id']}", headers=headers)).json()
    assert done["status"] == "completed", done
    assert done["progress"]["percent"] == 100
    result = done["result"]
    assert result["rowCount"] == 3
    assert result["sizeBytes"] > 0 and len(result["checksumSha256"]) == 64
    assert result["fileName"].startswith("learner-progress-")
    extension = FORMATS[fmt].extension
    assert result["fileName"].endswith(f".{extension}") and ".." not in result["fileName"]
    # Unique per job: the job id's last six hex digits before the extension.
    assert result["fileName"].endswith(f"-{job['id'][-6:]}.{extension}")

    response = await _download(client, job["id"], headers)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    content = response.content
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        text = "\n".join(",".join(r) for r in rows[1:])
        assert len(rows) == 4
    elif fmt == "json":
        lines = content.decode("utf-8").splitlines()
        assert json.loads(lines[0])["rowCount"] == 3 and len(lines) == 4
        text = "\n".join(lines[1:])
    elif fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
        sheet = book[book.sheetnames[0]]
        values = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
        assert len([v for v in values[1:] if any(v)]) == 3 + 1  # the rows, then the totals row
        assert values[-1][0] == "Total"
        text = "\n".join(" ".join(str(c) for c in row) for row in values)
    else:
        reader = PdfReader(io.BytesIO(content))
        text = "\n".join(page.extract_text() for page in reader.pages)
        assert "Learner progress" in text or "Learner Progress" in text
    for name in ("Ada", "Alan", "Anita"):
        assert name in text
    for name in ("Boris", "Bea", "Bravo"):
        assert name not in text


async def test_asking_for_another_departments_data_is_403_naming_it(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any]
) -> None:
    b = str(org["b"].id)
    response = await _create(client, manager_headers(auth, org), departmentIds=[b])
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "scope-exceeded"
    assert b in body["detail"]
    assert await ReportJob.count() == 0


async def test_invalid_requests_are_422_naming_the_field(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any]
) -> None:
    headers = auth("admin")
    bad_type = await client.post(
        JOBS, json={"reportType": "learnerProgress", "format": "csv"}, headers=headers
    )
    assert bad_type.status_code == 422
    error = bad_type.json()["errors"][0]
    assert error["field"] == "body.reportType"
    assert "learner-progress" in error["message"]

    bad_format = await client.post(
        JOBS, json={"reportType": "learner-progress", "format": "docx"}, headers=headers
    )
    assert bad_format.status_code == 422
    assert bad_format.json()["errors"][0]["field"] == "body.format"

    bad_param = await _create(client, headers, timezone="Mars/Olympus")
    assert bad_param.status_code == 422
    assert any(e["field"].startswith("parameters.timezone") for e in bad_param.json()["errors"])

    unknown = await client.post(
        JOBS, json={"reportType": "learner-progress", "format": "csv", "extra": 1}, headers=headers
    )
    assert unknown.status_code == 422
    assert await ReportJob.count() == 0


async def test_idempotency_key_returns_the_same_job_or_409(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any]
) -> None:
    headers = {**auth("admin", sub="65f0000000000000000000aa"), "Idempotency-Key": "k-1"}
    first = await _create(client, headers)
    again = await _create(client, headers)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = await _create(client, headers, "xlsx")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency-key-reused"
    assert await ReportJob.count() == 1


async def test_concurrent_jobs_per_user_are_capped_with_retry_after(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], resources: Resources
) -> None:
    headers = auth("admin", sub="65f0000000000000000000ab")
    for _ in range(resources.settings.max_active_jobs_per_user):
        assert (await _create(client, headers)).status_code == 202
    refused = await _create(client, headers)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["code"] == "job-quota-exceeded"


async def test_other_users_jobs_are_invisible(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any]
) -> None:
    mine = (await _create(client, manager_headers(auth, org))).json()
    stranger = auth("learner")
    assert (await client.get(f"{JOBS}/{mine['id']}", headers=stranger)).status_code == 404
    assert (await client.post(f"{JOBS}/{mine['id']}/cancel", headers=stranger)).status_code == 404
    assert (await _download(client, mine["id"], stranger)).status_code == 404
    listed = (await client.get(JOBS, headers=stranger)).json()
    assert listed["items"] == []
    admin_list = (await client.get(JOBS, headers=auth("admin"))).json()
    assert [j["id"] for j in admin_list["items"]] == [mine["id"]]


async def test_list_is_paginated_newest_first(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], resources: Resources
) -> None:
    headers = auth("admin", sub="65f0000000000000000000ac")
    ids = []
    for _ in range(resources.settings.max_active_jobs_per_user):
        ids.append((await _create(client, headers)).json()["id"])
    page1 = (await client.get(JOBS, params={"limit": 2}, headers=headers)).json()
    page2 = (
        await client.get(JOBS, params={"limit": 2, "cursor": page1["nextCursor"]}, headers=headers)
    ).json()
    page3 = (
        await client.get(JOBS, params={"limit": 2, "cursor": page2["nextCursor"]}, headers=headers)
    ).json()
    seen = [j["id"] for p in (page1, page2, page3) for j in p["items"]]
    assert seen == list(reversed(ids))
    assert page3["nextCursor"] is None
    bad = await client.get(JOBS, params={"cursor": "garbage!"}, headers=headers)
    assert bad.status_code == 422
    too_big = await client.get(JOBS, params={"limit": 101}, headers=headers)
    assert too_big.status_code == 422


async def test_cancel_a_queued_job_and_the_worker_never_runs_it(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], run_worker: Any
) -> None:
    headers = auth("admin")
    job = (await _create(client, headers)).json()
    cancelled = await client.post(f"{JOBS}/{job['id']}/cancel", headers=headers)
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"
    await run_worker()
    after = (await client.get(f"{JOBS}/{job['id']}", headers=headers)).json()
    assert after["status"] == "cancelled"
    assert after["attempt"] == 0
    assert (await _download(client, job["id"], headers)).status_code == 409
    again = await client.post(f"{JOBS}/{job['id']}/cancel", headers=headers)
    assert again.status_code == 202  # cancelling twice is harmless

    retried = await client.post(f"{JOBS}/{job['id']}/retry", headers=headers)
    assert retried.status_code == 202
    assert retried.json()["retryOfJobId"] == job["id"]
    await run_worker()
    new = (await client.get(f"{JOBS}/{retried.json()['id']}", headers=headers)).json()
    assert new["status"] == "completed"
    done_cancel = await client.post(f"{JOBS}/{new['id']}/cancel", headers=headers)
    assert done_cancel.status_code == 409
    assert (await client.post(f"{JOBS}/{new['id']}/retry", headers=headers)).status_code == 409


async def test_download_is_409_before_completion_and_410_after_retention(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    org: dict[str, Any],
    run_worker: Any,
    resources: Resources,
) -> None:
    headers = auth("admin")
    job = (await _create(client, headers)).json()
    early = await _download(client, job["id"], headers)
    assert early.status_code == 409
    assert early.json()["code"] == "job-not-ready"
    await run_worker()
    assert (await _download(client, job["id"], headers)).status_code == 200

    stored = await ReportJob.get(job["id"])
    assert stored and stored.result
    key = stored.result.storage_key
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": stored.id}, {"$set": {"expires_at": utcnow() - timedelta(minutes=1)}}
    )
    assert await expire_files(worker_context(resources)) == 1
    assert not await resources.storage.exists(key)
    gone = await _download(client, job["id"], headers)
    assert gone.status_code == 410
    assert (await client.get(f"{JOBS}/{job['id']}", headers=headers)).json()["status"] == "expired"


async def test_download_rechecks_access(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], run_worker: Any
) -> None:
    headers = manager_headers(auth, org)
    job = (await _create(client, headers)).json()
    await run_worker()
    assert (await _download(client, job["id"], headers)).status_code == 200
    # The same manager now manages only Bravo: the file holds data it may no longer see.
    moved = auth("manager", sub=str(org["manager"].id), departments=[str(org["b"].id)])
    response = await _download(client, job["id"], moved)
    assert response.status_code == 403
    assert response.json()["code"] == "job-access-revoked"


async def test_s3_download_redirects_to_a_presigned_url(
    auth: TokenFactory, org: dict[str, Any], s3_resources: Resources, run_worker: Any
) -> None:
    s3 = s3_resources.settings
    application = create_app(s3, resources=s3_resources)
    transport = httpx.ASGITransport(app=application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        headers = auth("admin")
        job = (await _create(c, headers)).json()
        await run_worker(
            **{
                k: getattr(s3, k)
                for k in (
                    "storage_backend",
                    "s3_endpoint_url",
                    "s3_bucket",
                    "s3_access_key_id",
                    "s3_secret_access_key",
                    "s3_part_size_mb",
                )
            }
        )
        response = await c.get(f"{JOBS}/{job['id']}/download", headers=headers)
        assert response.status_code == 302
        url = response.headers["location"]
        assert "X-Amz-Signature" in url and "X-Amz-Expires=300" in url
        async with httpx.AsyncClient() as http:
            file = await http.get(url)
        assert file.status_code == 200
        assert file.content.decode("utf-8-sig").count("\n") == 6  # header + 5 learners


async def test_duplicate_doorbells_run_the_job_once(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    org: dict[str, Any],
    run_worker: Any,
    resources: Resources,
) -> None:
    headers = auth("admin")
    job = (await _create(client, headers)).json()
    for n in range(2, 12):  # 10 more doorbells for the same job
        await resources.queue.dispatch_report_job(job["id"], n)
    await run_worker()
    stored = await ReportJob.get(job["id"])
    assert stored and stored.status == JobStatus.COMPLETED
    assert stored.attempt == 1
    assert stored.result
    keys = await resources.storage.list_keys(f"reports/{stored.created_at:%Y/%m/%d}/{stored.id}/")
    # The file and its row index, once.
    assert keys == [stored.result.storage_key, stored.result.row_index_key]


async def test_transient_failures_retry_then_fail_clearly(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], run_worker: Any
) -> None:
    headers = auth("admin")
    job = (await _create(client, headers)).json()
    # S3 that does not answer: every attempt fails at the store step.
    await run_worker(
        storage_backend="s3",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_access_key_id="x",
        s3_secret_access_key="x",
        job_retry_backoff_seconds=0,
    )
    stored = await ReportJob.get(job["id"])
    assert stored is not None
    assert stored.status == JobStatus.FAILED, stored
    assert stored.attempt == stored.max_attempts
    assert stored.error and "Gave up after" in stored.error.message


async def test_a_job_whose_lease_expired_is_taken_over_and_the_old_commit_refused(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], resources: Resources
) -> None:
    headers = auth("admin")
    job = (await _create(client, headers)).json()
    oid = await stored_job_id(job["id"])
    # Worker 1 claims, then freezes past its lease.
    frozen = await repository.claim(oid, token="frozen", owner="w1", lease_seconds=60)
    assert frozen is not None
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": oid}, {"$set": {"lease_expires_at": utcnow() - timedelta(seconds=1)}}
    )
    # Worker 2 takes it over and completes it (attempt 2).
    executor = JobExecutor(resources, "w2", asyncio.Event(), delivers=schedules.delivers)
    status = await executor.run(job["id"])
    assert status == JobStatus.COMPLETED
    # The frozen worker wakes up: its commit is refused.
    assert not await repository.finish_held(oid, "frozen", {"status": "failed"})
    final = await ReportJob.get(oid)
    assert final and final.status == JobStatus.COMPLETED and final.attempt == 2


async def test_csv_byte_order_mark_is_an_option(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], run_worker: Any
) -> None:
    headers = auth("admin")
    plain = (await _create(client, headers)).json()
    body = {
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": RANGE},
        "options": {"csvBom": True},
    }
    with_bom = (await client.post(JOBS, json=body, headers=headers)).json()
    assert with_bom["options"] == {"csvBom": True}
    await run_worker()
    assert not (await _download(client, plain["id"], headers)).content.startswith(b"\xef\xbb\xbf")
    assert (await _download(client, with_bom["id"], headers)).content.startswith(b"\xef\xbb\xbf")


async def test_a_cancel_asked_for_before_a_transient_failure_ends_cancelled(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], resources: Resources
) -> None:
    """Cancel requested while running, then the attempt fails transiently (or its worker
    dies): the job ends cancelled instead of waiting in the queue forever."""

    headers = auth("admin")
    first = (await _create(client, headers)).json()
    second = (await _create(client, headers)).json()
    for job_id, token in ((first["id"], "t1"), (second["id"], "t2")):
        oid = await stored_job_id(job_id)
        assert await repository.claim(oid, token=token, owner="w", lease_seconds=60)
        assert (await client.post(f"{JOBS}/{job_id}/cancel", headers=headers)).status_code == 202
    # First: the attempt fails transiently after the cancel came in.
    oid1 = await stored_job_id(first["id"])
    assert await repository.finish_cancelled_if_requested(oid1, "t1")
    # Second: its worker died; once the lease is gone the reaper ends it.
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": await stored_job_id(second["id"])},
        {"$set": {"lease_expires_at": utcnow() - timedelta(seconds=1)}},
    )
    assert (await reap(worker_context(resources)))["cancelled"] == 1
    for job_id in (first["id"], second["id"]):
        job = (await client.get(f"{JOBS}/{job_id}", headers=headers)).json()
        assert job["status"] == "cancelled"
    assert (
        await quota.count_active_for_user((await stored_job(first["id"])).requested_by.user_id) == 0
    )


async def test_a_crafted_cursor_is_a_422_not_a_500(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    cursor = encode_cursor({"c": "2024-01-01T00:00:00", "i": "nothex"})
    for path in (JOBS, "/api/v1/reports/templates", "/api/v1/reports/schedules"):
        response = await client.get(path, params={"cursor": cursor}, headers=auth("admin"))
        assert response.status_code == 422, (path, response.text)


async def test_a_second_request_while_the_first_with_the_same_key_is_storing_is_409(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any]
) -> None:
    sub = "65f0000000000000000000dd"
    parameters = {"dateRange": RANGE}
    body = {"reportType": "learner-progress", "format": "csv", "parameters": parameters}
    # The first request has stored its key but not yet its job.
    await IdempotencyRecord(
        user_id=sub,
        key="k-pending",
        request_hash=request_hash(
            "learner-progress", "csv", parameters, ["None", {"csv_bom": False}]
        ),
        job_id=PydanticObjectId(),
    ).insert()
    headers = {**auth("admin", sub=sub), "Idempotency-Key": "k-pending"}
    response = await client.post(JOBS, json=body, headers=headers)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency-key-in-use"
    assert response.headers["retry-after"] == "1"
    assert await ReportJob.count() == 0


async def test_a_missing_file_is_410_not_500(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    org: dict[str, Any],
    run_worker: Any,
    resources: Resources,
) -> None:
    headers = auth("admin")
    job = (await _create(client, headers)).json()
    await run_worker()
    stored = await ReportJob.get(job["id"])
    assert stored and stored.result
    await resources.storage.delete(stored.result.storage_key)
    response = await _download(client, job["id"], headers)
    assert response.status_code == 410
    assert response.json()["code"] == "job-file-missing"


async def test_create_a_job_from_a_template_with_overrides(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], run_worker: Any
) -> None:
    headers = manager_headers(auth, org)
    template = await client.post(
        "/api/v1/reports/templates",
        json={
            "name": "Progress",
            "reportType": "learner-progress",
            "format": "xlsx",
            "parameters": {"dateRange": RANGE},
            "visibility": "private",
        },
        headers=headers,
    )
    assert template.status_code == 201, template.text
    created = await client.post(
        JOBS, json={"templateId": template.json()["id"], "format": "csv"}, headers=headers
    )
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["templateId"] == template.json()["id"] and job["format"] == "csv"
    both = await client.post(
        JOBS,
        json={"templateId": template.json()["id"], "reportType": "learner-progress"},
        headers=headers,
    )
    assert both.status_code == 422
    neither = await client.post(JOBS, json={"parameters": {}}, headers=headers)
    assert neither.status_code == 422
    assert "reportType" in neither.json()["detail"]
    await run_worker()
    done = (await client.get(f"{JOBS}/{job['id']}", headers=headers)).json()
    assert done["status"] == "completed" and done["result"]["rowCount"] == 3
