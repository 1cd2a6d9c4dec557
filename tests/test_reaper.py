"""Lost doorbells: Redis flushed, Redis down while a job is created. The reaper rings again."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from typing import Any

import httpx

from app.common.time import utcnow
from app.config import Settings
from app.main import create_app
from app.queue import Queue
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.tasks import reap
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
BODY = {
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
}


async def _age_dispatch(job_id: str, seconds: int = 3600) -> None:
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": (await ReportJob.get(job_id)).id},  # type: ignore[union-attr]
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
    assert (await reap({"resources": resources}))["redispatched"] == 0
    for i in ids:
        await _age_dispatch(i)
    assert (await reap({"resources": resources}))["redispatched"] == 3
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
    assert (await reap({"resources": resources}))["redispatched"] == 0  # message still queued


async def test_creating_a_job_while_redis_is_down_still_stores_it(
    auth: TokenFactory,
    resources: Resources,
    settings: Settings,
    doomed_redis: tuple[int, subprocess.Popen[bytes]],
    run_worker: Any,
) -> None:
    port, proc = doomed_redis
    other = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    queue = await Queue.connect(other)
    flaky = Resources(
        settings=settings, database=resources.database, queue=queue, storage=resources.storage
    )
    application = create_app(settings, resources=flaky)
    await f.department()
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        proc.kill()
        proc.wait()
        response = await c.post(JOBS, json=BODY, headers=auth("admin"))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    await _age_dispatch(job_id)
    assert (await reap({"resources": resources}))["redispatched"] == 1
    await run_worker()
    job = await ReportJob.get(job_id)
    assert job and job.status == JobStatus.COMPLETED
