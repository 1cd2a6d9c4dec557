"""Real worker processes killed and stopped mid-job: no job is lost, none runs twice, no stray
file remains, and a clean shutdown does not spend an attempt."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import httpx
import pytest

from app.learning_events.models import LearningEvent  # noqa: F401 - documents registered
from app.queue import Queue, wake_channel
from app.reports.jobs.models import JobStatus, ReportJob
from app.runtime.models import WorkerProcess
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.jobs import files_of, finished_job, insert_enrollments, stored_job
from tests.helpers.polling import wait_until
from tests.helpers.processes import kill_group, start_redis, start_worker
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"


@pytest.fixture
async def big_pdf_job(client: httpx.AsyncClient, auth: TokenFactory, resources: Resources) -> str:
    """A PDF job with enough rows that rendering takes several seconds."""
    dept = await f.department("Operations", code="OPS")
    course = await f.course("OPS-1", title="Operations handbook " * 3)
    await insert_enrollments(course, dept, 600)
    body = {
        "reportType": "learner-progress",
        "format": "pdf",
        "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
    }
    response = await client.post(JOBS, json=body, headers=auth("admin"))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.mark.slow
async def test_sigkill_mid_render_loses_nothing_and_runs_once(
    big_pdf_job: str, resources: Resources
) -> None:
    first = start_worker()
    try:
        await wait_until(
            lambda: _step_is(big_pdf_job, "render"), 60, "the job to reach the render step"
        )
        kill_group(first, signal.SIGKILL)
        first.wait(10)
    finally:
        kill_group(first, signal.SIGKILL)
    stuck = await stored_job(big_pdf_job)
    assert stuck.status == JobStatus.RUNNING  # the dead worker still "holds" it
    second = start_worker()
    try:
        done = await wait_until(
            lambda: finished_job(big_pdf_job), 120, "another worker to finish the job"
        )
    finally:
        kill_group(second, signal.SIGTERM)
        second.wait(30)
    assert done.status == JobStatus.COMPLETED, done.error
    assert done.attempt == 2
    assert done.result is not None
    assert await files_of(resources, done) == [done.result.storage_key]


@pytest.mark.slow
async def test_sigterm_hands_the_job_back_without_spending_attempts(
    big_pdf_job: str, resources: Resources
) -> None:
    job = await stored_job(big_pdf_job)
    for _ in range(job.max_attempts + 1):  # more clean stops than attempts
        worker = start_worker()
        try:
            await wait_until(lambda: _step_is(big_pdf_job, "render"), 60, "render step")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        finally:
            kill_group(worker, signal.SIGKILL)
        back = await stored_job(big_pdf_job)
        assert back.status == JobStatus.QUEUED, back.status
        assert back.attempt == 0
    final_worker = start_worker()
    try:
        done = await wait_until(lambda: finished_job(big_pdf_job), 120, "completion")
    finally:
        kill_group(final_worker, signal.SIGTERM)
        final_worker.wait(30)
    assert done.status == JobStatus.COMPLETED
    assert done.attempt == 1
    assert done.result is not None
    assert await files_of(resources, done) == [done.result.storage_key]


@pytest.mark.slow
async def test_cancel_while_rendering_a_pdf_stops_within_seconds(
    client: httpx.AsyncClient, auth: TokenFactory, big_pdf_job: str, resources: Resources
) -> None:
    worker = start_worker()
    try:
        await wait_until(lambda: _step_is(big_pdf_job, "render"), 60, "render step")
        loop = asyncio.get_running_loop()
        asked = loop.time()
        response = await client.post(f"{JOBS}/{big_pdf_job}/cancel", headers=auth("admin"))
        assert response.status_code == 202
        done = await wait_until(lambda: finished_job(big_pdf_job), 15, "the cancel to take effect")
        assert done.status == JobStatus.CANCELLED
        assert loop.time() - asked < 5
        assert await files_of(resources, done) == []
    finally:
        kill_group(worker, signal.SIGTERM)
        worker.wait(30)


async def _step_is(job_id: str, step: str) -> bool:
    job = await ReportJob.get(job_id)
    return bool(job and job.status == JobStatus.RUNNING and job.progress.step == step)


@pytest.mark.slow
async def test_the_worker_survives_a_redis_outage_and_picks_up_work_after_it(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    resources: Resources,
    doomed_redis: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, first_redis = doomed_redis
    redis_url = f"redis://127.0.0.1:{port}/0"
    worker = start_worker(REDIS_URL=redis_url)
    second_redis: subprocess.Popen[bytes] | None = None
    try:
        await wait_until(lambda: WorkerProcess.find_one({"pid": worker.pid}), 30, "the worker")
        first_redis.kill()
        first_redis.wait()
        await asyncio.sleep(3)
        assert worker.poll() is None, "the worker exited when Redis went away"

        second_redis = start_redis(port)
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
        done = await wait_until(lambda: finished_job(job_id), 60, "the job after the outage")
        assert done.status == JobStatus.COMPLETED
    finally:
        kill_group(worker, signal.SIGTERM)
        worker.wait(30)
        if second_redis:
            second_redis.kill()
            second_redis.wait()


async def test_an_idle_worker_is_woken_by_a_new_job_instead_of_waiting_for_its_poll(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    worker = start_worker(WORKER_POLL_SECONDS="5")
    try:

        async def subscribed() -> bool:
            channel = wake_channel(resources.settings.queue_name)
            counts = await resources.queue.pool.pubsub_numsub(channel)
            return bool(counts and counts[0][1] > 0)

        await wait_until(subscribed, 30, "the worker to listen for wake-ups")
        await asyncio.sleep(1.0)  # well inside its 5 s poll wait
        await f.department()
        body = {"reportType": "learner-progress", "format": "csv", "parameters": {}}
        job_id = (await client.post(JOBS, json=body, headers=auth("admin"))).json()["id"]
        done = await wait_until(lambda: finished_job(job_id), 30, "the job")
        assert done.status == JobStatus.COMPLETED
        assert done.started_at is not None
        waited = (done.started_at - done.created_at).total_seconds()
        assert waited < 2.5, f"the job waited {waited:.1f} s for a worker polling every 5 s"
    finally:
        kill_group(worker, signal.SIGTERM)
        worker.wait(30)
