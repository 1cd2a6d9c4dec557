"""Lost doorbells: Redis flushed, Redis down while a job is created. The reaper rings again."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.common.time import utcnow
from app.config import Settings
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.tasks import reap
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.jobs import finished_job, stored_job_id
from tests.helpers.polling import wait_until
from tests.helpers.processes import kill_group, start_worker
from tests.helpers.queues import api_on_redis
from tests.helpers.storm import seed_rows
from tests.helpers.tasks import worker_context
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
BODY = {
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
}


async def _age_dispatch(job_id: str, seconds: int = 3600) -> None:
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": await stored_job_id(job_id)},
        {"$set": {"dispatched_at": utcnow() - timedelta(seconds=seconds)}},
    )


async def test_jobs_survive_a_redis_flush(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, run_worker: Any
) -> None:
    dept = await f.department()
    learner = await f.user(dept=dept)
    await f.enrollment(learner, await f.course(), enrolled_at=f.dt(2026, 5, 1))
    ids = [
        (await client.post(JOBS, json=BODY, headers=auth("admin"))).json()["id"] for _ in range(3)
    ]
    # Every doorbell is lost.
    await resources.queue.pool.delete(resources.settings.queue_name)
    for key in await resources.queue.pool.keys(f"arq:job:{resources.settings.queue_name}:*"):
        await resources.queue.pool.delete(key)
    await run_worker()
    for i in ids:
        job = await ReportJob.get(i)
        assert job and job.status == JobStatus.QUEUED

    # Within the grace period the reaper leaves them alone; after it, it rings again.
    assert (await reap(worker_context(resources)))["redispatched"] == 0
    for i in ids:
        await _age_dispatch(i)
    assert (await reap(worker_context(resources)))["redispatched"] == 3
    await run_worker()
    for i in ids:
        job = await ReportJob.get(i)
        assert job and job.status == JobStatus.COMPLETED and job.attempt == 1


async def test_reaper_does_not_ring_for_doorbells_still_waiting(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    await f.department()
    job_id = (await client.post(JOBS, json=BODY, headers=auth("admin"))).json()["id"]
    await _age_dispatch(job_id)
    assert (await reap(worker_context(resources)))["redispatched"] == 0  # message still queued


async def test_creating_a_job_while_redis_is_down_still_stores_it(
    auth: TokenFactory,
    resources: Resources,
    settings: Settings,
    doomed_redis: tuple[int, subprocess.Popen[bytes]],
    run_worker: Any,
) -> None:
    port, proc = doomed_redis
    await f.department()
    async with api_on_redis(settings, resources, port) as c:
        proc.kill()
        proc.wait()
        response = await c.post(JOBS, json=BODY, headers=auth("admin"))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    await _age_dispatch(job_id)
    assert (await reap(worker_context(resources)))["redispatched"] == 1
    await run_worker()
    job = await ReportJob.get(job_id)
    assert job and job.status == JobStatus.COMPLETED


@pytest.mark.slow
async def test_a_job_requeued_without_its_doorbell_after_a_kill_runs_again(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    """The stale-key case: a worker is killed mid-job (its arq keys stay for hours under the
    message id of that dispatch), the job is set back to queued as an older reaper did, without
    a new dispatch; a new worker's reaper rings again and the job completes."""
    await seed_rows(600)
    body = {**BODY, "format": "pdf"}
    job_id = (await client.post(JOBS, json=body, headers=auth("admin"))).json()["id"]
    victim = start_worker()
    try:
        await wait_until(lambda: _running(job_id), 60, "the job to run")
    finally:
        kill_group(victim, signal.SIGKILL)
        victim.wait(10)
    job = await ReportJob.get(job_id)
    assert job is not None and job.status == JobStatus.RUNNING
    message = f"{resources.settings.queue_name}:report:{job_id}:{job.dispatch_count}"
    assert await resources.queue.pool.exists(f"arq:in-progress:{message}")
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": job.id},
        {
            "$set": {
                "status": JobStatus.QUEUED.value,
                "lease_token": None,
                "lease_owner": None,
                "lease_expires_at": None,
                "available_at": None,
                "progress.step": "queued",
            }
        },
    )
    started = time.monotonic()
    rescuer = start_worker(JOB_DISPATCH_GRACE_SECONDS="1")
    try:
        done = await wait_until(lambda: finished_job(job_id), 90, "the job to complete")
    finally:
        kill_group(rescuer, signal.SIGTERM)
        rescuer.wait(30)
    print(f"\nstale keys: completed {time.monotonic() - started:.1f} s after the new worker")
    assert done.status == JobStatus.COMPLETED, done.error
    assert done.dispatch_count > job.dispatch_count  # rung under a new message id


async def _running(job_id: str) -> bool:
    job = await ReportJob.get(job_id)
    return job is not None and job.status == JobStatus.RUNNING
