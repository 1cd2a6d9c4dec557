"""The worker process: runs report jobs and the once-a-minute scheduler / maintenance tick.

    python -m worker [--burst]

It opens the same adapters as the API (`app.runtime.resources`), records itself in MongoDB
every few seconds so operators and `/readyz` can see it, serves its Prometheus metrics on
`WORKER_METRICS_PORT` (jobs, queue, scheduler, deliveries: docs/operations.md), keeps its copy of
the lookup table fresh, and shuts down cleanly on SIGTERM: running jobs hand their lease back
without spending an attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import start_http_server

from app.common.time import as_utc, utcnow
from app.config import Settings, describe_config_error, get_settings
from app.documents import DOCUMENTS
from app.lookup_sources import provide_lookup_sources
from app.lookups import validation
from app.observability import (
    JOBS_ACTIVE,
    JOBS_LEASED,
    QUEUE_DEPTH,
    QUEUE_OLDEST_AGE,
    configure_logging,
)
from app.queue import WorkerSpec, build_workers
from app.reports.deliveries import outbox
from app.reports.deliveries.models import DeliveryChannel
from app.reports.deliveries.sender import run_sender
from app.reports.jobs import repository as jobs_repository
from app.reports.reading.preference import use_report_reads
from app.reports.reading.shared import share_dimensions
from app.reports.tasks import WorkerContext, cron_tasks, run_report_job
from app.runtime.models import WorkerProcess
from app.runtime.resources import Resources, StartupError
from app.runtime.scratch import claim_scratch, sweep
from app.runtime.workers import MISSED_HEARTBEATS

log = structlog.get_logger("worker")

MIN_HEARTBEATS_PER_LEASE = 3
# Room for the time the heartbeat writes themselves take (both are stamped by the worker's own
# clock, so a difference between hosts' clocks cancels out).
LIVENESS_MARGIN_SECONDS = 1.0


async def _heartbeat(ctx: WorkerContext, settings: Settings) -> None:
    collection = WorkerProcess.get_pymongo_collection()
    sweep_every = settings.temp_sweep_minutes * 60
    swept_at = time.monotonic()
    while True:
        scratch = ctx["scratch"]
        if scratch is not None and time.monotonic() - swept_at >= sweep_every:
            swept_at = time.monotonic()
            await asyncio.to_thread(sweep, scratch.parent, own=scratch)
        try:
            await collection.update_one(
                {"worker_id": ctx["worker_id"]},
                {
                    "$set": {
                        "last_seen_at": utcnow(),
                        "running_jobs": len(ctx["running"]),
                        "host": socket.gethostname(),
                        "pid": os.getpid(),
                        "queues": [settings.queue_name, settings.scheduler_queue_name],
                    },
                    "$setOnInsert": {"started_at": utcnow()},
                },
                upsert=True,
            )
        except Exception as exc:  # MongoDB away: keep trying, jobs keep their own leases
            log.warning("worker_heartbeat_failed", error=str(exc)[:200])
        await asyncio.sleep(settings.worker_heartbeat_seconds)


def start_metrics_server(settings: Settings) -> Any | None:
    """prometheus-client's own HTTP server (a daemon thread) on `WORKER_METRICS_PORT`; None when
    turned off (0) or when the port is taken (the worker still works, unobserved)."""
    if not settings.worker_metrics_port:
        return None
    try:
        server, _thread = start_http_server(
            settings.worker_metrics_port, addr=settings.worker_metrics_host
        )
    except OSError as exc:
        log.warning("worker_metrics_unavailable", port=settings.worker_metrics_port, error=str(exc))
        return None
    log.info("worker_metrics_serving", port=settings.worker_metrics_port)
    return server


async def sample_queue() -> None:
    """Queue depth, the age of the oldest job due to run, and jobs running anywhere (read from
    MongoDB, so every worker reports the same figures: aggregate with max)."""
    now = utcnow()
    queued, oldest, running = await jobs_repository.queue_figures(now)
    QUEUE_DEPTH.set(queued)
    # The figures are read one after another: a job queued (or claimed) between the two reads
    # must not show an age beside an empty queue.
    age = (now - as_utc(oldest)).total_seconds() if oldest and queued else 0.0
    QUEUE_OLDEST_AGE.set(max(age, 0.0))
    JOBS_LEASED.set(running)


async def _sample_queue_every(interval: float) -> None:
    while True:
        try:
            await sample_queue()
        except Exception as exc:  # MongoDB away: the gauges keep their last values
            log.warning("queue_sample_failed", error=str(exc)[:200])
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def operations(settings: Settings) -> AsyncIterator[None]:
    """What makes the worker observable and current: the metrics endpoint, the queue gauges,
    the lookup table refreshed every `LOOKUP_REFRESH_SECONDS`."""
    server = start_metrics_server(settings)
    sampler = asyncio.create_task(_sample_queue_every(settings.worker_heartbeat_seconds))
    try:
        async with validation.kept_fresh(settings.lookup_refresh_seconds):
            yield
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()


def tune_gc() -> None:
    """Report rows are plain tuples and dicts, freed by reference counting; with the default
    thresholds the cyclic collector still runs every 700 allocations and walks the worker's
    long-lived objects (imported modules, models) again and again: ~2 µs per CSV row. Startup
    objects are frozen out of its way and young collections happen 20x less often."""
    gc.freeze()
    gc.set_threshold(14_000, 20, 20)


async def run_worker(
    settings: Settings,
    *,
    burst: bool = False,
    poll_delay: float | None = None,
    resources: Resources | None = None,
) -> None:
    """Runs until SIGTERM / SIGINT (or, in burst mode, until the queue is empty). Pass
    `resources` to share already-open adapters (they are then left open)."""
    # Signals are taken first: a stop asked for while the worker is still starting (opening
    # connections, claiming its work directory) is a clean stop too, not the default kill.
    control = _Control()
    provide_lookup_sources()
    use_report_reads(settings)
    share_dimensions()  # the joins' documents kept across jobs, while the server says unchanged
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, control.stop, signum)
    if resources is not None:  # shared with a test's or an app's interpreter: left open
        await _serve(settings, resources, control, scratch=None, burst=burst, poll_delay=poll_delay)
        return
    # A process of its own: temporary files go under a directory of this process, and dead
    # processes' are removed. Whatever happens on the way out, the directory goes.
    tune_gc()
    scratch = claim_scratch()
    try:
        await asyncio.to_thread(sweep, scratch.parent, own=scratch)
        own = await Resources.open(settings, documents=DOCUMENTS)
        try:
            await _serve(
                settings, own, control, scratch=scratch, burst=burst, poll_delay=poll_delay
            )
        finally:
            await own.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class _Control:
    """What a stop signal reaches: the event every part of the worker watches, the jobs running
    and the arq workers of the current round (which take no new work once it is set)."""

    shutdown: asyncio.Event = field(default_factory=asyncio.Event)
    running: set[Any] = field(default_factory=set)
    current: list[Any] = field(default_factory=list)

    def stop(self, signum: int) -> None:
        log.info("worker_stopping", signal=signal.Signals(signum).name, running=len(self.running))
        for w in self.current:  # take no new work; running jobs hand theirs back
            w.allow_pick_jobs = False
        self.shutdown.set()


async def _serve(
    settings: Settings,
    resources: Resources,
    control: _Control,
    *,
    burst: bool,
    poll_delay: float | None,
    scratch: Path | None,
) -> None:
    """The worker's life between start-up and stop: arq's runners, the heartbeat, the delivery
    sender and the operations around them."""
    loop = asyncio.get_running_loop()
    shutdown, current = control.shutdown, control.current
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    ctx: WorkerContext = {
        "resources": resources,
        "worker_id": worker_id,
        "shutdown": shutdown,
        "running": control.running,
        "scratch": scratch,
    }
    JOBS_ACTIVE.set(0)
    spec = WorkerSpec(
        settings=settings,
        report_task=run_report_job,
        cron_tasks=[] if burst else cron_tasks(settings),
        burst=burst,
        poll_delay=poll_delay if poll_delay is not None else settings.worker_poll_seconds,
    )
    heartbeat = asyncio.create_task(_heartbeat(ctx, settings))
    observed = contextlib.AsyncExitStack()
    await observed.enter_async_context(operations(settings))
    # The delivery senders run beside arq's runners (they only read stored files, so a slow
    # SMTP server never holds report jobs), one lane per channel so that a stuck webhook
    # never holds back an e-mail; commits that plan deliveries wake them at once. A burst run
    # only empties the report queue: the next long-running worker sends.
    sender_stop = asyncio.Event()
    lanes: dict[asyncio.Event, asyncio.Task[None]] = {}
    if not burst:
        for channel in DeliveryChannel:
            wake = asyncio.Event()
            outbox.register_waker(wake)
            lanes[wake] = asyncio.create_task(
                run_sender(
                    resources, worker_id=worker_id, stop=sender_stop, wake=wake, channel=channel
                )
            )
    log.info("worker_started", worker_id=worker_id, queue=settings.queue_name, burst=burst)
    stop_wait = asyncio.create_task(shutdown.wait())
    runners: list[asyncio.Task[Any]] = []
    try:
        while True:
            current[:] = build_workers(spec, ctx)
            runners = [asyncio.create_task(w.async_run()) for w in current]
            done, _ = await asyncio.wait([*runners, stop_wait], return_when=asyncio.FIRST_COMPLETED)
            if burst and not shutdown.is_set():
                await asyncio.gather(*runners, return_exceptions=True)
                break
            if shutdown.is_set():
                # Running jobs see `shutdown`, hand their leases back and return quickly.
                deadline = loop.time() + 20
                while ctx["running"] and loop.time() < deadline:
                    await asyncio.sleep(0.1)
                break
            # A queue runner stopped on its own: arq gives up when Redis goes away. Jobs
            # already running carry on (they only need MongoDB); pick-up resumes once Redis
            # answers again, and the reaper re-rings anything whose doorbell was lost.
            failure = next((t.exception() for t in done if t is not stop_wait), None)
            log.warning("queue_connection_lost", error=str(failure)[:200] if failure else None)
            await _abandon(current, runners)
            await _wait_for_queue(resources, shutdown)
            if shutdown.is_set():
                break
            log.info("queue_reconnected")
    finally:
        stop_wait.cancel()
        await _abandon(current, runners, close=True)
        sender_stop.set()
        for wake in lanes:
            outbox.unregister_waker(wake)
        if lanes:  # an attempt under way ends within its deadline
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.gather(*lanes.values()), timeout=30)
        heartbeat.cancel()
        with contextlib.suppress(BaseException):
            await heartbeat
        await observed.aclose()
        with contextlib.suppress(Exception):
            await WorkerProcess.get_pymongo_collection().delete_one({"worker_id": worker_id})
        log.info("worker_stopped", worker_id=worker_id)


async def _abandon(
    workers: list[Any], runners: list[asyncio.Task[Any]], close: bool = False
) -> None:
    """Stops the arq runners of a round (and, on the way out, closes their connections)."""
    for runner in runners:
        runner.cancel()
    await asyncio.gather(*runners, return_exceptions=True)
    for w in workers:
        with contextlib.suppress(Exception):
            if close:
                await asyncio.wait_for(w.close(), timeout=30)
            else:
                await w.pool.aclose()


async def _wait_for_queue(resources: Resources, shutdown: asyncio.Event) -> None:
    delay = 1.0
    while not shutdown.is_set():
        try:
            await asyncio.wait_for(resources.queue.ping(), timeout=3)
            return
        except Exception:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), timeout=delay)
            delay = min(delay * 2, 10.0)


def settings_problem(settings: Settings) -> str | None:
    """Why these settings cannot run a worker safely, or None."""
    lease, beat = settings.job_lease_seconds, settings.job_heartbeat_seconds
    if lease < MIN_HEARTBEATS_PER_LEASE * beat:
        # One slow or failed renewal must not cost a live job its lease.
        return (
            f"JOB_LEASE_SECONDS ({lease}) must be at least "
            f"{MIN_HEARTBEATS_PER_LEASE} x JOB_HEARTBEAT_SECONDS ({beat})"
        )
    # A worker killed just before renewing a lease leaves it lease - JOB_HEARTBEAT_SECONDS to
    # run; its own record reads as alive for MISSED_HEARTBEATS worker heartbeats after the
    # kill. A lease that ends sooner makes the crash look like a stall, and a stall gives the
    # attempt back: a job killing its worker every time would be retried over and over.
    alive = MISSED_HEARTBEATS * settings.worker_heartbeat_seconds
    needed = alive + beat + LIVENESS_MARGIN_SECONDS
    if lease < needed:
        room = (lease - beat - LIVENESS_MARGIN_SECONDS) / MISSED_HEARTBEATS
        hint = f"at most {room:g}" if room > 0 else "shorter, with a longer lease"
        return (
            f"JOB_LEASE_SECONDS ({lease}) must be at least {needed:g}: "
            f"{MISSED_HEARTBEATS} x WORKER_HEARTBEAT_SECONDS ({settings.worker_heartbeat_seconds})"
            f" + JOB_HEARTBEAT_SECONDS ({beat}) + {LIVENESS_MARGIN_SECONDS:g} s, or a killed "
            f"worker's jobs count as stalled and get their attempts back; "
            f"make WORKER_HEARTBEAT_SECONDS {hint} or the lease longer"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except Exception as exc:
        print(f"worker: configuration error: {describe_config_error(exc)}", file=sys.stderr)
        return 2
    problem = settings_problem(settings)
    if problem:
        print(f"worker: configuration error: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        asyncio.run(run_worker(settings, burst=args.burst))
    except StartupError as exc:
        print(f"worker: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
