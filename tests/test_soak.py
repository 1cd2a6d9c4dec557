"""The heavy reliability runs (`make soak`): repeated crashes at random steps, schedulers
racing over many slots, cancels racing completion. Each prints its figures."""

from __future__ import annotations

import asyncio
import random
import signal
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.schedules.scheduler import run_due_schedules
from app.runtime.resources import Resources
from tests.helpers.jobs import files_of, finished_job, stored_keys
from tests.helpers.polling import wait_until
from tests.helpers.processes import kill_group, start_worker
from tests.helpers.schedules import at, owner, schedule_for
from tests.helpers.storm import kill_storm, seed_rows, takeover_bound
from tests.helpers.tokens import TokenFactory

pytestmark = pytest.mark.soak
JOBS = "/api/v1/reports/jobs"
STEPS = ("count", "fetch", "render", "store", "finish")


async def test_sigkill_at_random_steps_over_20_runs(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    """Every job completes exactly once, and no stray file remains, however the worker dies."""
    await seed_rows(400)
    rng = random.Random(20)
    figures = {"runs": 0, "completed_once": 0, "duplicates": 0, "stray_files": 0}
    for run in range(20):
        fmt = rng.choice(["pdf", "csv", "xlsx"])
        step = rng.choice(STEPS if fmt == "pdf" else ("count", "fetch", "render", "store"))
        body = {
            "reportType": "learner-progress",
            "format": fmt,
            "parameters": {
                "dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}
            },
        }
        job_id = (await client.post(JOBS, json=body, headers=auth("admin"))).json()["id"]
        victim = start_worker(FETCH_BATCH_SIZE="100")

        async def reached(job_id: str = job_id, step: str = step) -> bool:
            job = await ReportJob.get(job_id)
            if job is None or job.status == JobStatus.QUEUED:
                return False
            if job.status != JobStatus.RUNNING:
                return True  # already finished: kill it anyway
            current = job.progress.step
            return current in STEPS and STEPS.index(current) >= STEPS.index(step)

        try:
            await wait_until(reached, 60, f"run {run}: step {step}")
        except AssertionError:
            pass  # finished before the chosen step: still a valid run
        kill_group(victim, signal.SIGKILL)
        victim.wait(10)
        rescuer = start_worker()
        try:
            done = await wait_until(partial(finished_job, job_id), 120, f"run {run}")
        finally:
            kill_group(rescuer, signal.SIGTERM)
            rescuer.wait(30)
        figures["runs"] += 1
        files = await files_of(resources, done)
        if done.status == JobStatus.COMPLETED and done.result and files == stored_keys(done):
            figures["completed_once"] += 1
        kept = len(stored_keys(done)) if done.result else 1
        figures["stray_files"] += max(0, len(files) - kept)
        figures["duplicates"] += await ReportJob.find({"retry_of_job_id": done.id}).count()
    print(f"\nsoak sigkill: {figures}")
    assert figures == {"runs": 20, "completed_once": 20, "duplicates": 0, "stray_files": 0}


async def test_three_schedulers_over_100_due_slots_make_exactly_100_jobs(
    resources: Resources,
) -> None:
    user = await owner()
    slot = at(2026, 12, 1, 9)
    schedules = [await schedule_for(user, slot, name=f"S{n:03d}") for n in range(100)]
    now = slot + timedelta(seconds=3)
    created = await asyncio.gather(*(run_due_schedules(resources, now=now) for _ in range(3)))
    again = await asyncio.gather(*(run_due_schedules(resources, now=now) for _ in range(3)))
    jobs = await ReportJob.find({"schedule_id": {"$in": [s.id for s in schedules]}}).count()
    print(f"\nsoak scheduler: ticks=6 created={sum(created)}+{sum(again)} jobs={jobs}")
    assert sum(created) == 100 and sum(again) == 0 and jobs == 100


async def test_cancel_racing_completion_ends_in_one_consistent_state(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, run_worker: Any
) -> None:
    await seed_rows(50)
    headers = auth("admin", sub="65f0000000000000000000cc")
    outcomes: dict[str, int] = {}
    rng = random.Random(7)
    for i in range(10):
        body = {"reportType": "learner-progress", "format": "csv", "parameters": {}}
        job_id = (await client.post(JOBS, json=body, headers=headers)).json()["id"]
        worker = asyncio.create_task(run_worker())
        # Every other cancel is sent at once (it meets a queued or just-claimed job), the
        # others at a random moment (often after the job is done).
        await asyncio.sleep(rng.uniform(0, 0.6) if i % 2 else 0)
        cancel = await client.post(f"{JOBS}/{job_id}/cancel", headers=headers)
        await worker
        job = await ReportJob.get(job_id)
        assert job is not None
        assert cancel.status_code in (202, 409)
        if cancel.status_code == 202:  # an accepted cancel always wins over the final commit
            assert job.status == JobStatus.CANCELLED, job.status
        if job.status == JobStatus.COMPLETED:
            assert job.result and await resources.storage.exists(job.result.storage_key)
        else:
            assert job.status == JobStatus.CANCELLED and job.result is None
            assert await files_of(resources, job) == []
        outcomes[job.status.value] = outcomes.get(job.status.value, 0) + 1
    print(f"\nsoak cancel race: {outcomes}")
    assert sum(outcomes.values()) == 10
    assert outcomes.get("cancelled", 0) >= 1  # the race really happened


async def test_20_random_kills_of_two_workers_with_a_10s_lease(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, tmp_path: Path
) -> None:
    """Ten jobs, two workers, a 10 s lease, 20 SIGKILLs: every job ends completed exactly once
    or failed after its attempts, and no dead worker's job waits longer than lease + reaper
    interval + 5 s."""
    figures = await kill_storm(
        client, auth, resources, tmp_path, jobs=10, kills=20, lease_seconds=10
    )
    print(f"\nsoak kill storm: {figures.summary()}")
    assert figures.completed_once + figures.failed_after_attempts == 10, figures.other
    assert figures.stray_files == 0 and figures.duplicates == 0
    assert max(figures.takeovers, default=0) <= takeover_bound(10), figures.takeovers
    assert figures.temp_dirs_left == 0
