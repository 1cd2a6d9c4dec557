"""A kill storm: worker processes SIGKILLed at random moments while report jobs run, measuring
how long each dead worker's jobs wait before another worker takes them over."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
from bson import ObjectId

from app.reports.jobs.models import FINAL_STATUSES, JobStatus, ReportJob
from app.runtime import scratch
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.jobs import files_of, insert_enrollments, stored_keys
from tests.helpers.polling import wait_until
from tests.helpers.processes import kill_group, start_worker
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
REAPER_INTERVAL_SECONDS = 15  # app.reports.tasks: every 15 s


async def seed_rows(n: int) -> None:
    dept = await f.department("Storm", code="STORM")
    course = await f.course("STORM-1")
    await insert_enrollments(course, dept, n)


@dataclass
class StormFigures:
    jobs: int = 0
    kills: int = 0
    completed_once: int = 0
    failed_after_attempts: int = 0
    other: list[str] = field(default_factory=list)
    stray_files: int = 0
    duplicates: int = 0
    takeovers: list[float] = field(default_factory=list)  # seconds from a kill to the takeover
    temp_dirs_left: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        worst = max(self.takeovers, default=0.0)
        return (
            f"jobs={self.jobs} kills={self.kills} completed_once={self.completed_once} "
            f"failed_after_attempts={self.failed_after_attempts} other={self.other} "
            f"stray_files={self.stray_files} duplicates={self.duplicates} "
            f"takeovers={len(self.takeovers)} worst_takeover={worst:.1f}s "
            f"temp_dirs_left={self.temp_dirs_left} seconds={self.seconds:.0f}"
        )


def _owner_prefix(proc: subprocess.Popen[bytes]) -> str:
    return f"{socket.gethostname()}:{proc.pid}:"


async def _held_by(prefix: str) -> list[str]:
    cursor = ReportJob.get_pymongo_collection().find(
        {"status": JobStatus.RUNNING.value, "lease_owner": {"$regex": f"^{prefix}"}}, {"_id": 1}
    )
    return [str(doc["_id"]) async for doc in cursor]


async def _taken_over(job_id: str, prefix: str) -> bool:
    job = await ReportJob.get(job_id)
    if job is None or job.status in FINAL_STATUSES:
        return True
    return job.status == JobStatus.RUNNING and not (job.lease_owner or "").startswith(prefix)


async def kill_storm(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    resources: Resources,
    tmp: Path,
    *,
    jobs: int,
    kills: int,
    lease_seconds: int,
    seed: int = 12,
) -> StormFigures:
    """Runs `jobs` jobs on two workers, SIGKILLs a random worker `kills` times (starting a new
    one each time), waits for every job to end, and reports what it saw."""
    rng = random.Random(seed)
    figures = StormFigures(jobs=jobs)
    started = time.monotonic()
    env = {
        "JOB_LEASE_SECONDS": str(lease_seconds),
        "JOB_HEARTBEAT_SECONDS": str(max(0.5, lease_seconds / 5)),
        # A killed worker's record goes stale well before its leases end (worker/main.py).
        "WORKER_HEARTBEAT_SECONDS": str(lease_seconds / 10),
        "JOB_DISPATCH_GRACE_SECONDS": "5",
        "FETCH_BATCH_SIZE": "100",
        "WORKER_CONCURRENCY": str(max(1, jobs // 2 + 1)),
        "TMPDIR": str(tmp),
    }
    await seed_rows(400)
    ids: list[str] = []
    for n in range(jobs):
        body = {
            "reportType": "learner-progress",
            "format": ("csv", "xlsx", "pdf")[n % 3],
            "parameters": {
                "dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}
            },
        }
        response = await client.post(JOBS, json=body, headers=auth("admin", sub=str(ObjectId())))
        assert response.status_code == 202, response.text
        ids.append(str(response.json()["id"]))
    workers = [start_worker(**env), start_worker(**env)]
    watchers: list[asyncio.Task[None]] = []

    async def watch(job_ids: list[str], prefix: str, killed_at: float) -> None:
        for job_id in job_ids:
            await wait_until(
                partial(_taken_over, job_id, prefix), 600, f"takeover of {job_id}", interval=0.2
            )
            figures.takeovers.append(time.monotonic() - killed_at)

    try:
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            victim = workers.pop(rng.randrange(len(workers)))
            prefix = _owner_prefix(victim)
            held = await _held_by(prefix)
            kill_group(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            victim.wait(10)
            figures.kills += 1
            watchers.append(asyncio.create_task(watch(held, prefix, killed_at)))
            workers.append(start_worker(**env))
        for job_id in ids:
            await wait_until(partial(_final, job_id), 600, f"job {job_id} to end")
        await asyncio.gather(*watchers)
    finally:
        for w in workers:
            kill_group(w, signal.SIGTERM)
        for w in workers:
            w.wait(60)
        for task in watchers:
            task.cancel()
    # A worker started now sweeps what the killed ones left; its clean stop removes its own.
    sweeper = start_worker(**env)
    try:
        await asyncio.sleep(3)
    finally:
        kill_group(sweeper, signal.SIGTERM)
        sweeper.wait(60)
    figures.temp_dirs_left = len(scratch_dirs(tmp))
    for job_id in ids:
        job = await ReportJob.get(job_id)
        assert job is not None
        files = await files_of(resources, job)
        if job.status == JobStatus.COMPLETED and job.result and files == stored_keys(job):
            figures.completed_once += 1
        elif job.status == JobStatus.FAILED and job.error and job.attempt >= job.max_attempts:
            figures.failed_after_attempts += 1
        else:
            figures.other.append(f"{job.status.value}:{job.error}")
        if job.status != JobStatus.COMPLETED:
            figures.stray_files += len(files)
        else:
            figures.stray_files += max(0, len(files) - len(stored_keys(job)))
        figures.duplicates += await ReportJob.find({"retry_of_job_id": job.id}).count()
    figures.seconds = time.monotonic() - started
    return figures


async def _final(job_id: str) -> bool:
    job = await ReportJob.get(job_id)
    return job is not None and job.status in FINAL_STATUSES


def scratch_dirs(base: Path) -> list[str]:
    """The worker work directories under `base`."""
    return sorted(p.name for p in base.iterdir() if p.name.startswith(scratch.PREFIX))


def takeover_bound(lease_seconds: int) -> float:
    """The promise: lease + reaper interval + 5 s."""
    return float(lease_seconds + REAPER_INTERVAL_SECONDS + 5)
