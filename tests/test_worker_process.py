"""Real worker processes killed and stopped mid-job: no job is lost, none runs twice, no stray
file remains, and a clean shutdown does not spend an attempt."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId

from app.learning_events.models import LearningEvent  # noqa: F401 - documents registered
from app.platform.models import Enrollment
from app.reports.jobs.models import JobStatus, ReportJob
from app.runtime.resources import Resources
from tests import factories as f
from tests.conftest import TokenFactory

ROOT = Path(__file__).resolve().parents[1]
JOBS = "/api/v1/reports/jobs"


def _start_worker(**env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env={
            **os.environ,
            "JOB_LEASE_SECONDS": "5",
            "JOB_HEARTBEAT_SECONDS": "0.5",
            "JOB_RETRY_BACKOFF_SECONDS": "0",
            "RENDER_PROCESSES": "1",
            "PDF_CHUNK_ROWS": "100",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    assert exe, "redis-server is not installed"
    return subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


async def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def big_pdf_job(client: httpx.AsyncClient, auth: TokenFactory, resources: Resources) -> str:
    """A PDF job with enough rows that rendering takes several seconds."""
    dept = await f.department("Operations", code="OPS")
    course = await f.course("OPS-1", title="Operations handbook " * 3)
    # Each row its own learner (the user documents are not needed for this test).
    docs = [
        {
            "user_id": PydanticObjectId(),
            "course_id": course.id,
            "department_id": dept.id,
            "status": "in-progress",
            "enrolled_at": f.dt(2026, 2, 1, 8),
            "progress_percent": float(i % 100),
            "time_spent_minutes": i,
        }
        for i in range(600)
    ]
    await Enrollment.get_pymongo_collection().insert_many(docs)
    body = {
        "reportType": "learner-progress",
        "format": "pdf",
        "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
    }
    response = await client.post(JOBS, json=body, headers=auth("admin"))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def _job(job_id: str) -> ReportJob:
    job = await ReportJob.get(job_id)
    assert job is not None
    return job


async def _files_of(resources: Resources, job: ReportJob) -> list[str]:
    return await resources.storage.list_keys(f"reports/{job.created_at:%Y/%m/%d}/{job.id}/")


@pytest.mark.slow
async def test_sigkill_mid_render_loses_nothing_and_runs_once(
    big_pdf_job: str, resources: Resources
) -> None:
    first = _start_worker()
    try:
        await _wait_for(
            lambda: _step_is(big_pdf_job, "render"), 60, "the job to reach the render step"
        )
        _kill_group(first, signal.SIGKILL)
        first.wait(10)
    finally:
        _kill_group(first, signal.SIGKILL)
    stuck = await _job(big_pdf_job)
    assert stuck.status == JobStatus.RUNNING  # the dead worker still "holds" it
    second = _start_worker()
    try:
        done = await _wait_for(
            lambda: _finished(big_pdf_job), 120, "another worker to finish the job"
        )
    finally:
        _kill_group(second, signal.SIGTERM)
        second.wait(30)
    assert done.status == JobStatus.COMPLETED, done.error
    assert done.attempt == 2
    assert done.result is not None
    assert await _files_of(resources, done) == [done.result.storage_key]


@pytest.mark.slow
async def test_sigterm_hands_the_job_back_without_spending_attempts(
    big_pdf_job: str, resources: Resources
) -> None:
    job = await _job(big_pdf_job)
    for _ in range(job.max_attempts + 1):  # more clean stops than attempts
        worker = _start_worker()
        try:
            await _wait_for(lambda: _step_is(big_pdf_job, "render"), 60, "render step")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        finally:
            _kill_group(worker, signal.SIGKILL)
        back = await _job(big_pdf_job)
        assert back.status == JobStatus.QUEUED, back.status
        assert back.attempt == 0
    final_worker = _start_worker()
    try:
        done = await _wait_for(lambda: _finished(big_pdf_job), 120, "completion")
    finally:
        _kill_group(final_worker, signal.SIGTERM)
        final_worker.wait(30)
    assert done.status == JobStatus.COMPLETED
    assert done.attempt == 1
    assert await _files_of(resources, done) == [done.result.storage_key]  # type: ignore[union-attr]


@pytest.mark.slow
async def test_cancel_while_rendering_a_pdf_stops_within_seconds(
    client: httpx.AsyncClient, auth: TokenFactory, big_pdf_job: str, resources: Resources
) -> None:
    worker = _start_worker()
    try:
        await _wait_for(lambda: _step_is(big_pdf_job, "render"), 60, "render step")
        loop = asyncio.get_running_loop()
        asked = loop.time()
        response = await client.post(f"{JOBS}/{big_pdf_job}/cancel", headers=auth("admin"))
        assert response.status_code == 202
        done = await _wait_for(lambda: _finished(big_pdf_job), 15, "the cancel to take effect")
        assert done.status == JobStatus.CANCELLED
        assert loop.time() - asked < 5
        assert await _files_of(resources, done) == []
    finally:
        _kill_group(worker, signal.SIGTERM)
        worker.wait(30)


async def _step_is(job_id: str, step: str) -> bool:
    job = await ReportJob.get(job_id)
    return bool(job and job.status == JobStatus.RUNNING and job.progress.step == step)


async def _finished(job_id: str) -> ReportJob | None:
    job = await ReportJob.get(job_id)
    if job and job.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
        return job
    return None


@pytest.mark.slow
async def test_the_worker_survives_a_redis_outage_and_picks_up_work_after_it(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    resources: Resources,
    doomed_redis: tuple[int, subprocess.Popen[bytes]],
) -> None:
    from app.queue import Queue
    from app.runtime.models import WorkerProcess

    port, first_redis = doomed_redis
    redis_url = f"redis://127.0.0.1:{port}/0"
    worker = _start_worker(REDIS_URL=redis_url)
    second_redis: subprocess.Popen[bytes] | None = None
    try:
        await _wait_for(lambda: WorkerProcess.find_one({"pid": worker.pid}), 30, "the worker")
        first_redis.kill()
        first_redis.wait()
        await asyncio.sleep(3)
        assert worker.poll() is None, "the worker exited when Redis went away"

        second_redis = _start_redis(port)
        await f.department()
        body = {"reportType": "learner-progress", "format": "csv", "parameters": {}}
        job_id = (await client.post(JOBS, json=body, headers=auth("admin"))).json()["id"]
        settings = resources.settings.model_copy(update={"redis_url": redis_url})
        for _ in range(50):  # until the new Redis accepts connections
            try:
                queue = await Queue.connect(settings)
                break
            except Exception:
                await asyncio.sleep(0.2)
        await queue.dispatch_report_job(job_id, 99)
        await queue.close()
        done = await _wait_for(lambda: _finished(job_id), 60, "the job after the outage")
        assert done.status == JobStatus.COMPLETED
    finally:
        _kill_group(worker, signal.SIGTERM)
        worker.wait(30)
        if second_redis:
            second_redis.kill()
            second_redis.wait()


async def test_an_idle_worker_is_woken_by_a_new_job_instead_of_waiting_for_its_poll(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    from app.queue import wake_channel

    worker = _start_worker(WORKER_POLL_SECONDS="5")
    try:

        async def subscribed() -> bool:
            channel = wake_channel(resources.settings.queue_name)
            counts = await resources.queue.pool.pubsub_numsub(channel)
            return bool(counts and counts[0][1] > 0)

        await _wait_for(subscribed, 30, "the worker to listen for wake-ups")
        await asyncio.sleep(1.0)  # well inside its 5 s poll wait
        await f.department()
        body = {"reportType": "learner-progress", "format": "csv", "parameters": {}}
        job_id = (await client.post(JOBS, json=body, headers=auth("admin"))).json()["id"]
        done = await _wait_for(lambda: _finished(job_id), 30, "the job")
        assert done.status == JobStatus.COMPLETED
        assert done.started_at is not None
        waited = (done.started_at - done.created_at).total_seconds()
        assert waited < 2.5, f"the job waited {waited:.1f} s for a worker polling every 5 s"
    finally:
        _kill_group(worker, signal.SIGTERM)
        worker.wait(30)
