"""Crash safety: a requeue that can never collide with a dead run's queue keys, stalls that
spend no attempt, a quota that holds under a burst, a hung Redis that never holds a request,
a cancel that always wins over the final commit, and the sweep of dead workers' work
directories."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId
from bson import ObjectId

from app.common.time import utcnow
from app.config import Settings
from app.reports.execution import lease, pipeline
from app.reports.execution.executor import JobExecutor
from app.reports.execution.outcome import Outcome
from app.reports.jobs import repository
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.schedules import repository as schedules
from app.reports.tasks import reap
from app.runtime import scratch
from app.runtime.models import WorkerProcess
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.jobs import files_of, stored_job_id
from tests.helpers.polling import wait_until
from tests.helpers.processes import ROOT, kill_group, start_worker
from tests.helpers.queues import api_on_redis
from tests.helpers.settings import settings_env
from tests.helpers.storm import kill_storm, scratch_dirs, takeover_bound
from tests.helpers.tasks import worker_context
from tests.helpers.tokens import TokenFactory
from worker.main import settings_problem

JOBS = "/api/v1/reports/jobs"
BODY = {
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
}


async def _create(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post(JOBS, json=BODY, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def _expire_lease(job_id: str, owner: str) -> None:
    """The job as a worker that stopped heart-beating leaves it: running, lease expired."""
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": PydanticObjectId(job_id)},
        {
            "$set": {
                "status": JobStatus.RUNNING.value,
                "lease_token": "dead",
                "lease_owner": owner,
                "lease_expires_at": utcnow() - timedelta(seconds=1),
                "attempt": 1,
            }
        },
    )


# ---------------------------------------------------------------------------------------------
# Requeue and re-dispatch


async def test_a_requeue_counts_a_dispatch_so_the_next_doorbell_has_a_new_id(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    await f.department()
    job_id = await _create(client, auth("admin"))
    before = await ReportJob.get(job_id)
    assert before is not None and before.dispatch_count == 1
    await _expire_lease(job_id, "gone:1:abc")
    requeued = await repository.requeue_expired_leases(attempts_cap=6)
    assert [str(j.id) for j in requeued] == [job_id]
    # Counted in the same write as the requeue, and marked as never rung.
    assert requeued[0].dispatch_count == 2 and requeued[0].dispatched_at is None
    assert requeued[0].status == JobStatus.QUEUED


async def test_a_queued_job_whose_doorbell_a_dead_run_took_is_rung_again(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, run_worker: Any
) -> None:
    """The keys a killed run leaves (its message still in the queue, `arq:job` for a day,
    `arq:in-progress` for hours) do not count as a waiting doorbell."""
    await f.department()
    job_id = await _create(client, auth("admin"))
    job = await ReportJob.get(job_id)
    assert job is not None
    message = f"{resources.settings.queue_name}:report:{job_id}:{job.dispatch_count}"
    await resources.queue.pool.psetex(f"arq:in-progress:{message}", 6 * 3600 * 1000, b"1")
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": job.id}, {"$set": {"dispatched_at": utcnow() - timedelta(hours=1)}}
    )
    assert await resources.queue.is_pending(job_id, job.dispatch_count) is False
    assert (await reap(worker_context(resources)))["redispatched"] == 1
    await resources.queue.pool.delete(f"arq:in-progress:{message}")  # let the old message go
    await run_worker()
    done = await ReportJob.get(job_id)
    assert done and done.status == JobStatus.COMPLETED


async def test_a_deferred_retry_doorbell_still_counts_as_waiting(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    await f.department()
    job_id = await _create(client, auth("admin"))
    oid = await stored_job_id(job_id)
    await resources.queue.pool.delete(resources.settings.queue_name)  # the first doorbell lost
    number = await repository.mark_dispatched(oid)
    await resources.queue.dispatch_report_job(job_id, number, defer_seconds=3600)
    assert await resources.queue.is_pending(job_id, number) is True


async def test_the_reaper_does_a_bounded_amount_of_work_per_run(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, settings: Settings
) -> None:
    await f.department()
    ids = [await _create(client, auth("admin", sub=str(ObjectId()))) for _ in range(5)]
    for job_id in ids:
        await _expire_lease(job_id, "gone:1:abc")
    small = settings.model_copy(update={"reaper_batch_size": 2})
    shared = Resources(
        settings=small,
        database=resources.database,
        queue=resources.queue,
        storage=resources.storage,
    )
    counts = [(await reap(worker_context(shared)))["requeued"] for _ in range(4)]
    assert counts == [2, 2, 1, 0]


# ---------------------------------------------------------------------------------------------
# Stalls are not crashes


async def test_a_stalled_holder_that_is_still_alive_spends_no_attempt(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    await f.department()
    stalled = await _create(client, auth("admin", sub=str(ObjectId())))
    crashed = await _create(client, auth("admin", sub=str(ObjectId())))
    await WorkerProcess(worker_id="alive:1:aaa", host="h", pid=1, queues=[]).insert()
    await _expire_lease(stalled, "alive:1:aaa")
    await _expire_lease(crashed, "dead:2:bbb")
    assert (await reap(worker_context(resources)))["requeued"] == 2
    s, c = await ReportJob.get(stalled), await ReportJob.get(crashed)
    assert s and c
    assert s.max_attempts == c.max_attempts + 1  # the stall is given its attempt back
    assert s.status == c.status == JobStatus.QUEUED


def test_a_worker_refuses_a_lease_shorter_than_three_heartbeats(settings: Settings) -> None:
    bad = settings.model_copy(update={"job_lease_seconds": 5, "job_heartbeat_seconds": 2.0})
    assert "JOB_LEASE_SECONDS" in (settings_problem(bad) or "")
    assert settings_problem(settings) is None
    proc = subprocess.run(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env=settings_env(settings, JOB_LEASE_SECONDS="5", JOB_HEARTBEAT_SECONDS="2"),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert b"JOB_LEASE_SECONDS" in proc.stderr


def test_a_worker_refuses_a_lease_its_own_crash_would_outlive(settings: Settings) -> None:
    """A 10 s lease with workers reporting every 5 s: a killed worker still looks alive when
    its leases end, so its crashes would count as stalls and never use up a job's attempts."""
    proc = subprocess.run(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env=settings_env(
            settings,
            JOB_LEASE_SECONDS="10",
            JOB_HEARTBEAT_SECONDS="2",
            WORKER_HEARTBEAT_SECONDS="5",
        ),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    message = proc.stderr.decode()
    assert "JOB_LEASE_SECONDS (10) must be at least 18" in message, message
    assert "make WORKER_HEARTBEAT_SECONDS at most 2.33333" in message, message
    # So does a cap on attempts below the attempts every job gets.
    capped = subprocess.run(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env=settings_env(settings, JOB_MAX_ATTEMPTS="5", JOB_ATTEMPTS_CAP="4"),
        capture_output=True,
        timeout=60,
    )
    assert capped.returncode == 2
    assert b"JOB_ATTEMPTS_CAP (4) must be at least JOB_MAX_ATTEMPTS (5)" in capped.stderr


async def test_stalls_never_raise_a_jobs_attempts_past_the_cap(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, settings: Settings
) -> None:
    """A job whose holder stalls every time (its worker record stays fresh): the first stall
    is given back, later ones are not once the cap is reached, and the job ends failed."""
    await f.department()
    job_id = await _create(client, auth("admin"))
    capped = settings.model_copy(update={"job_attempts_cap": 4})
    shared = Resources(
        settings=capped,
        database=resources.database,
        queue=resources.queue,
        storage=resources.storage,
    )
    await WorkerProcess(worker_id="alive:1:aaa", host="h", pid=1, queues=[]).insert()
    budgets = []
    for _ in range(4):
        run = await lease.claim(job_id, owner="alive:1:aaa", lease_seconds=60)
        assert run is not None
        await ReportJob.get_pymongo_collection().update_one(
            {"_id": run.job_id}, {"$set": {"lease_expires_at": utcnow() - timedelta(seconds=1)}}
        )
        assert (await reap(worker_context(shared)))["requeued"] == 1
        job = await ReportJob.get(job_id)
        assert job is not None
        budgets.append(job.max_attempts)
    assert budgets == [4, 4, 4, 4], budgets  # 3 + one give-back, then no more
    executor = JobExecutor(shared, "w", asyncio.Event(), delivers=schedules.delivers)
    assert await executor.run(job_id) == JobStatus.FAILED
    job = await ReportJob.get(job_id)
    assert job and job.status == JobStatus.FAILED and job.attempt == 5
    assert job.error and job.error.message.startswith("Gave up after 4 attempts")


async def test_a_failed_heartbeat_is_retried_quickly(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, settings: Settings
) -> None:
    await f.department()
    job_id = await _create(client, auth("admin"))
    run = await lease.claim(job_id, owner="t", lease_seconds=60)
    assert run is not None
    calls: list[float] = []
    real = repository.heartbeat

    async def flaky(*args: Any) -> dict[str, Any] | None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise ConnectionError("database away")
        return await real(*args)

    slow = settings.model_copy(update={"job_heartbeat_seconds": 3.0})
    body = asyncio.create_task(asyncio.sleep(4.5))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(repository, "heartbeat", flaky)
        await lease.heartbeat(run, body, slow, asyncio.Event())
    assert len(calls) >= 2
    assert calls[1] - calls[0] < 1.0  # not a whole interval later


# ---------------------------------------------------------------------------------------------
# Quota


async def test_a_burst_of_20_accepts_exactly_the_quota(
    client: httpx.AsyncClient, auth: TokenFactory, settings: Settings
) -> None:
    await f.department()
    headers = auth("admin", sub=str(ObjectId()))
    answers = await asyncio.gather(
        *(client.post(JOBS, json=BODY, headers=headers) for _ in range(20))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(202) == settings.max_active_jobs_per_user, codes
    assert set(codes) == {202, 429}


async def test_a_quota_lock_left_by_a_dead_process_heals(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    await f.department()
    user = str(ObjectId())
    locks = ReportJob.get_pymongo_collection().database["job_quota_locks"]
    await locks.insert_one(
        {"_id": user, "token": "dead", "expires_at": utcnow() - timedelta(seconds=1)}
    )
    started = time.monotonic()
    assert (await client.post(JOBS, json=BODY, headers=auth("admin", sub=user))).status_code == 202
    assert time.monotonic() - started < 2
    assert await locks.count_documents({"_id": user}) == 0


# ---------------------------------------------------------------------------------------------
# A hung Redis


async def test_creating_a_job_while_redis_hangs_answers_within_2_seconds(
    auth: TokenFactory,
    resources: Resources,
    settings: Settings,
    doomed_redis: tuple[int, subprocess.Popen[bytes]],
    run_worker: Any,
) -> None:
    port, proc = doomed_redis
    await f.department()
    async with api_on_redis(settings, resources, port) as c:
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            timings = []
            for _ in range(2):
                started = time.monotonic()
                response = await c.post(JOBS, json=BODY, headers=auth("admin"))
                timings.append(time.monotonic() - started)
                assert response.status_code == 202, response.text
        finally:
            os.kill(proc.pid, signal.SIGCONT)
    print(f"\nPOST /jobs with Redis stopped: {[round(t, 2) for t in timings]} s")
    assert max(timings) < 2, timings
    job_id = response.json()["id"]
    await ReportJob.get_pymongo_collection().update_many(
        {}, {"$set": {"dispatched_at": utcnow() - timedelta(hours=1)}}
    )
    assert (await reap(worker_context(resources)))["redispatched"] == 2
    await run_worker()
    job = await ReportJob.get(job_id)
    assert job and job.status == JobStatus.COMPLETED


# ---------------------------------------------------------------------------------------------
# Cancel wins


async def test_a_cancel_accepted_before_the_final_commit_wins(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    await f.department()
    headers = auth("admin")
    job_id = await _create(client, headers)
    run = await lease.claim(job_id, owner="t", lease_seconds=60)
    assert run is not None
    body = asyncio.create_task(pipeline.produce(run, resources))
    await body  # the file is made and stored; the commit has not happened yet
    assert run.stored_key and await resources.storage.exists(run.stored_key)
    assert (await client.post(f"{JOBS}/{job_id}/cancel", headers=headers)).status_code == 202

    async def commit() -> bool:
        return await lease.commit(
            run,
            resources.storage,
            resources.settings,
            pipeline.storage_prefix(run.job),
            schedules.delivers,
        )

    outcome = Outcome(resources, run, schedules.delivers)
    assert await outcome.settle(body, commit) == JobStatus.CANCELLED
    job = await ReportJob.get(job_id)
    assert job and job.status == JobStatus.CANCELLED and job.result is None
    assert await files_of(resources, job) == []


async def test_20_cancels_racing_completion_each_202_ends_cancelled(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, run_worker: Any
) -> None:
    await f.department()
    headers = auth("admin")
    outcomes: dict[str, int] = {}
    for i in range(20):
        job_id = await _create(client, headers)
        worker = asyncio.create_task(run_worker())
        await asyncio.sleep(0.01 * i)
        cancel = await client.post(f"{JOBS}/{job_id}/cancel", headers=headers)
        await worker
        job = await ReportJob.get(job_id)
        assert job is not None
        if cancel.status_code == 202:
            assert job.status == JobStatus.CANCELLED, (i, job.status)
            assert await files_of(resources, job) == []
        else:
            assert cancel.status_code == 409 and job.status == JobStatus.COMPLETED
        key = f"{cancel.status_code}->{job.status.value}"
        outcomes[key] = outcomes.get(key, 0) + 1
    print(f"\ncancel race: {outcomes}")


# ---------------------------------------------------------------------------------------------
# Temporary work directories


def test_the_sweep_removes_dead_workers_directories_only(tmp_path: Path) -> None:
    host = scratch._host()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f"{scratch.PREFIX}{host}-{dead.pid}-abc"
    alive = tmp_path / f"{scratch.PREFIX}{host}-{os.getpid()}-def"
    other_host = tmp_path / f"{scratch.PREFIX}elsewhere-{dead.pid}-ghi"
    old_loose = tmp_path / "pdf-render-old"
    new_loose = tmp_path / "report-new"
    for d in (gone, alive, other_host, old_loose, new_loose):
        (d / "sub").mkdir(parents=True)
    os.utime(old_loose, (0, 0))
    assert scratch.sweep(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (alive, other_host, new_loose)
    )


async def test_a_killed_workers_directory_is_swept_by_the_next_worker(
    tmp_path: Path, resources: Resources
) -> None:
    first = start_worker(TMPDIR=str(tmp_path))
    try:
        await wait_until(lambda: _dirs(tmp_path), 60, "the worker's work directory", interval=0.1)
    finally:
        kill_group(first, signal.SIGKILL)
        first.wait(10)
    left = await _dirs(tmp_path)
    assert len(left) == 1
    second = start_worker(TMPDIR=str(tmp_path))
    try:
        await wait_until(lambda: _only_other_than(tmp_path, left[0]), 60, "the sweep", interval=0.1)
    finally:
        kill_group(second, signal.SIGTERM)
        second.wait(30)
    assert await _dirs(tmp_path) == []  # a clean stop removes its own


async def test_a_worker_that_cannot_start_leaves_no_work_directory(tmp_path: Path) -> None:
    worker = start_worker(
        TMPDIR=str(tmp_path),
        MONGODB_URL="mongodb://127.0.0.1:1/?directConnection=true",
        MONGODB_TIMEOUT_MS="3000",
    )
    try:
        # A stop asked for while it still waits for its database is taken, not the default kill.
        await wait_until(lambda: _dirs(tmp_path), 60, "the worker's work directory", interval=0.05)
        kill_group(worker, signal.SIGTERM)
        assert worker.wait(30) != -signal.SIGTERM
    finally:
        kill_group(worker, signal.SIGKILL)
        worker.wait(10)
    assert await _dirs(tmp_path) == []


async def _dirs(base: Path) -> list[str]:
    return scratch_dirs(base)


async def _only_other_than(base: Path, name: str) -> bool:
    names = await _dirs(base)
    return name not in names and len(names) == 1


# ---------------------------------------------------------------------------------------------
# Workers killed at random (the heavy variant is in tests/test_soak.py)


async def test_a_few_random_kills_lose_no_job_and_takeover_stays_bounded(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, tmp_path: Path
) -> None:
    figures = await kill_storm(client, auth, resources, tmp_path, jobs=4, kills=3, lease_seconds=5)
    print(f"\nkill storm (light): {figures.summary()}")
    assert figures.completed_once + figures.failed_after_attempts == 4, figures.other
    assert figures.stray_files == 0 and figures.duplicates == 0
    assert max(figures.takeovers, default=0) <= takeover_bound(5), figures.takeovers
    assert figures.temp_dirs_left == 0
