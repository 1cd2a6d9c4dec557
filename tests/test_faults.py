"""Infrastructure faults: the database goes away and comes back; S3 is unreachable while a
report is uploaded and comes back.

The database test runs the API as its own process (`python -m app`) against a second
MongoDB-compatible server that the test stops and restarts: the most realistic route, and the
test session's documents stay bound to the main server (Beanie binds them per process)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.reports.jobs.models import JobStatus, ReportJob
from app.runtime.resources import Resources
from app.security import mint_token
from app.storage import build_storage
from tests import factories as f
from tests.helpers.servers import (
    SECANTUS,
    Server,
    free_port,
    secantus_argv,
    stop_process,
    wait_for_port,
)
from tests.helpers.settings import settings_env
from tests.helpers.tokens import TokenFactory
from worker.main import run_worker

ROOT = Path(__file__).resolve().parents[1]
JOBS = "/api/v1/reports/jobs"
BODY = {
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
}


# ---------------------------------------------------------------------------------------------
# The database goes away


@pytest.fixture
def second_database(tmp_path: Path) -> Iterator[Server]:
    if not SECANTUS.exists():
        pytest.skip(f"{SECANTUS} is missing: run scripts/install.sh to get the local database")
    port = free_port()
    server = Server(secantus_argv(port, tmp_path / "db"), port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api_process(
    second_database: Server, settings: Settings, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """`python -m app` on a free port, on the second database; yields its URL and admin
    headers."""
    port = free_port()
    env = {
        **settings_env(settings),
        "MONGODB_URL": f"mongodb://127.0.0.1:{second_database.port}/?directConnection=true",
        "MONGODB_DB": f"faults_{uuid.uuid4().hex[:8]}",
        "MONGODB_TIMEOUT_MS": "1000",
        "LOCAL_STORAGE_DIR": str(tmp_path / "files"),
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=60)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(
            proc.stderr.read().decode() if proc.stderr else "api did not start"
        ) from None
    token = mint_token(settings, sub="a" * 24, name="Root", email=None, roles=["admin"])
    yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    stop_process(proc)


async def _until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("the condition never came true")
        await asyncio.sleep(0.2)


async def test_database_down_gives_503s_quickly_and_the_api_recovers(
    second_database: Server, api_process: tuple[str, dict[str, str]]
) -> None:
    url, headers = api_process
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get(JOBS, headers=headers)).status_code == 200
        created = await http.post(JOBS, json=BODY, headers=headers)
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]

        second_database.stop()

        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["mongodb"].startswith("down")
        assert ready.json()["checks"]["redis"] == "ok"
        for method, path, body in (
            ("GET", JOBS, None),
            ("GET", f"{JOBS}/{job_id}", None),
            ("POST", JOBS, BODY),
            ("GET", "/api/v1/reports/templates", None),
            ("GET", "/api/v1/reports/schedules", None),
            ("GET", "/api/v1/reports/metadata/formats", None),
            ("GET", "/api/v1/reports/metadata/filter-options/users", None),
        ):
            started = time.monotonic()
            response = await http.request(method, path, json=body, headers=headers)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "database-unavailable"
            assert "Retry-After" in response.headers
            assert "mongodb://" not in response.text and "Traceback" not in response.text
            assert elapsed < 5, (path, elapsed)
        # Work that needs no database still answers.
        assert (await http.get("/healthz")).status_code == 200

        second_database.start()

        async def recovered() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await _until(recovered, timeout=30)
        listed = await http.get(JOBS, headers=headers)
        assert listed.status_code == 200
        assert job_id in {j["id"] for j in listed.json()["items"]}  # nothing was lost
        assert (await http.post(JOBS, json=BODY, headers=headers)).status_code == 202


# ---------------------------------------------------------------------------------------------
# S3 goes away during an upload


@pytest.fixture
def flaky_s3() -> Iterator[Server]:
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists() and shutil.which("moto_server") is None:
        pytest.skip("moto_server is not installed")
    port = free_port()
    server = Server([str(exe), "-H", "127.0.0.1", "-p", str(port)], port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def flaky_s3_settings(settings: Settings, flaky_s3: Server) -> AsyncIterator[Settings]:
    cfg = Settings.model_validate(
        {
            **settings.model_dump(),
            "storage_backend": "s3",
            "s3_endpoint_url": f"http://127.0.0.1:{flaky_s3.port}",
            "s3_bucket": f"flaky-{uuid.uuid4().hex[:8]}",
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "s3_part_size_mb": 5,
            "s3_create_bucket": True,
            "job_max_attempts": 6,
            "job_retry_backoff_seconds": 0.5,
        }
    )
    yield cfg


async def test_s3_down_during_upload_retries_and_completes_when_it_returns(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    resources: Resources,
    flaky_s3: Server,
    flaky_s3_settings: Settings,
) -> None:
    dept = await f.department()
    await f.enrollment(await f.user(dept=dept), await f.course(), enrolled_at=f.dt(2026, 3, 1))
    storage = await build_storage(flaky_s3_settings)  # the bucket exists; now S3 goes away
    created = await client.post(JOBS, json=BODY, headers=auth("admin"))
    assert created.status_code == 202
    job_id = created.json()["id"]
    flaky_s3.stop()

    shared = Resources(
        settings=flaky_s3_settings,
        database=resources.database,
        queue=resources.queue,
        storage=storage,
    )
    worker = asyncio.create_task(
        run_worker(flaky_s3_settings, burst=True, poll_delay=0.05, resources=shared)
    )
    try:

        async def failed_once() -> bool:
            job = await ReportJob.get(job_id)
            return job is not None and job.error is not None and job.attempt >= 1

        await _until(failed_once, timeout=60)
        job = await ReportJob.get(job_id)
        assert job and job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        assert job.error and job.error.code != "row-limit-exceeded"

        flaky_s3.start()  # moto keeps nothing across restarts: the bucket comes back empty
        restored = await build_storage(flaky_s3_settings)
        await restored.close()
        await asyncio.wait_for(worker, timeout=60)
    finally:
        if not worker.done():
            worker.cancel()
        await storage.close()

    job = await ReportJob.get(job_id)
    assert job is not None and job.status == JobStatus.COMPLETED, job and job.error
    assert 1 < job.attempt <= flaky_s3_settings.job_max_attempts
    assert job.result is not None and job.result.size_bytes > 0
    assert job.error is None
