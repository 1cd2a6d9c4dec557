"""The job queue adapter: the only module that imports arq.

MongoDB holds the truth about every job; a queue message is only a doorbell saying "look at
job X". Each dispatch gets a fresh arq job id (`<queue>:report:<id>:<dispatch number>`) so a kept
result or an in-progress key from an earlier dispatch never blocks a new one.

arq finds new messages by polling Redis. A dispatch also publishes a wake-up on
`<queue>:wake`, and idle workers subscribed to it poll at once: a new job starts within
milliseconds while an idle worker polls only every `WORKER_POLL_SECONDS` (the fallback, and
how deferred retries are found when they come due).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.cron import cron
from arq.worker import Worker, func

from app.config import Settings

RUN_REPORT_JOB = "run_report_job"

log = logging.getLogger(__name__)


def wake_channel(queue_name: str) -> str:
    return f"{queue_name}:wake"


CRON_POLL_SECONDS = 1.0

TaskFunction = Callable[..., Awaitable[Any]]


class Queue:
    def __init__(self, settings: Settings, pool: ArqRedis) -> None:
        self.settings = settings
        self.pool = pool

    @classmethod
    async def connect(cls, settings: Settings) -> Queue:
        redis = RedisSettings.from_dsn(settings.redis_url)
        redis.conn_retries = 0  # fail fast at start-up; callers decide whether to retry
        redis.conn_timeout = settings.redis_connect_timeout_seconds  # type: ignore[assignment]
        pool = await create_pool(
            redis,
            default_queue_name=settings.queue_name,
            retry=0,
        )
        # arq's settings have no socket timeout: a hung Redis (accepting connections, answering
        # nothing) would hold a request for as long as it hangs. The pool is rebuilt with one
        # (the start-up ping's connection, made without it, goes with the old pool); the job is
        # in MongoDB and the reaper rings again.
        old = pool.connection_pool
        pool.connection_pool = type(old)(
            connection_class=old.connection_class,
            max_connections=old.max_connections,
            **{**old.connection_kwargs, "socket_timeout": settings.redis_socket_timeout_seconds},
        )
        await old.disconnect()
        return cls(settings, pool)

    async def ping(self) -> None:
        await self.pool.ping()

    def _message_id(self, job_id: str, dispatch_no: int) -> str:
        # Namespaced by queue so deployments (or test runs) sharing a Redis never meet.
        return f"{self.settings.queue_name}:report:{job_id}:{dispatch_no}"

    async def dispatch_report_job(
        self, job_id: str, dispatch_no: int, *, defer_seconds: float = 0
    ) -> None:
        # A hard bound over the several round trips of an enqueue, whatever the driver does.
        async with asyncio.timeout(self.settings.redis_socket_timeout_seconds * 1.5):
            queued = await self.pool.enqueue_job(
                RUN_REPORT_JOB,
                job_id,
                _job_id=self._message_id(job_id, dispatch_no),
                _queue_name=self.settings.queue_name,
                _defer_by=timedelta(seconds=defer_seconds) if defer_seconds > 0 else None,
            )
        if queued is None:  # arq kept keys under this id: never true for a fresh dispatch number
            raise RuntimeError(f"the queue refused message {self._message_id(job_id, dispatch_no)}")
        if defer_seconds <= 0:
            try:
                async with asyncio.timeout(self.settings.redis_socket_timeout_seconds):
                    await self.pool.publish(wake_channel(self.settings.queue_name), job_id)
            except Exception as exc:  # the message is queued: a worker's poll finds it
                log.info("queue wake-up not published: %s", str(exc)[:200])

    async def is_pending(self, job_id: str, dispatch_no: int) -> bool:
        """True while that dispatch's message waits in the queue for a worker (due now or
        deferred). A message some worker took (its in-progress key exists) is not waiting: a
        live worker claims a queued job within milliseconds of taking its message, so one taken
        long ago belongs to a run that died, and its keys (kept for hours) mean nothing."""
        arq_id = self._message_id(job_id, dispatch_no)
        async with self.pool.pipeline(transaction=False) as pipe:
            pipe.zscore(self.settings.queue_name, arq_id)
            pipe.exists(f"arq:in-progress:{arq_id}")
            score, taken = await pipe.execute()
        return score is not None and not taken

    async def count_in_window(self, name: str, window_seconds: int) -> tuple[int, float]:
        """Counts one more event `name` (e.g. a user's preview) in the current fixed window of
        `window_seconds`; returns the events of this window so far and the seconds until it
        ends. The counter is in Redis, so every API replica counts against the same one."""
        now = time.time()
        window = int(now // window_seconds)
        key = f"{self.settings.queue_name}:rate:{name}:{window}"
        async with asyncio.timeout(self.settings.redis_socket_timeout_seconds * 1.5):
            async with self.pool.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_seconds + 1)
                count, _ = await pipe.execute()
        return int(count), (window + 1) * window_seconds - now

    async def close(self) -> None:
        await self.pool.aclose()


@dataclass
class CronTask:
    """A maintenance coroutine run by the worker on a fixed cadence."""

    name: str
    coroutine: TaskFunction
    second: int | set[int] = 0
    every_minutes: int = 1
    run_at_startup: bool = False
    timeout_seconds: int = 55


@dataclass
class WorkerSpec:
    """What a worker process runs; `build_workers` turns it into arq workers."""

    settings: Settings
    report_task: TaskFunction
    cron_tasks: Sequence[CronTask] = field(default_factory=list)
    on_startup: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    on_shutdown: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    burst: bool = False
    poll_delay: float = 0.5


class _WakeableWorker(Worker):
    """arq's worker whose poll loop also wakes up on a message published to `wake_channel`.

    `main` is arq's own (0.28: pyproject pins the minor, and tests/test_queue.py fails when the
    private methods copied or hooked here change) with its fixed-interval poll replaced by "poll,
    then wait for a wake-up or `poll_delay`, whichever comes first". Without a subscription
    (Redis refusing pub/sub, a dropped connection) it simply polls every `poll_delay`.
    """

    def __init__(self, *args: Any, wake_channel: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wake_channel = wake_channel
        self._wake = asyncio.Event()

    async def main(self) -> None:
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        listener = asyncio.create_task(self._listen()) if self.wake_channel else None
        try:
            while True:
                self._wake.clear()  # a wake-up arriving during the poll is kept for the next
                await self._poll_iteration()
                if self.burst:
                    if 0 <= self.max_burst_jobs <= self._jobs_started():
                        await asyncio.gather(*self.tasks.values())
                        return
                    if await self.pool.zcard(self.queue_name) == 0:
                        await asyncio.gather(*self.tasks.values())
                        return
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that arrives together with a wake-up, and the runner would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_delay_s):
                        await self._wake.wait()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(BaseException):
                    await listener

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._wake.set()  # a slot is free: look for queued jobs now, not at the next poll

    async def _listen(self) -> None:
        """Sets `_wake` on every message; resubscribes with back-off when the connection
        drops (meanwhile the loop still polls every `poll_delay`)."""
        assert self.wake_channel is not None
        delay = 0.5
        while True:
            pubsub = self.pool.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.wake_channel)
                delay = 0.5
                async for _message in pubsub.listen():
                    self._wake.set()
            except Exception as exc:
                log.warning("queue wake-up subscription lost (retrying): %s", str(exc)[:200])
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py: untyped
            self._wake.set()  # whatever was published meanwhile: look once
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def build_workers(spec: WorkerSpec, ctx: Mapping[str, Any]) -> list[Worker]:
    """Two arq workers sharing one context: report jobs on the main queue, and the scheduler /
    maintenance cron on a queue of its own so report load never delays a tick."""
    settings = spec.settings
    redis = RedisSettings.from_dsn(settings.redis_url)
    # Our own lease governs run time; arq's timeout only bounds a hung task.
    report_fn = func(
        spec.report_task,  # type: ignore[arg-type]
        name=RUN_REPORT_JOB,
        max_tries=1,
        timeout=6 * 3600,
    )
    reports = _WakeableWorker(
        functions=[report_fn],
        wake_channel=wake_channel(settings.queue_name),
        queue_name=settings.queue_name,
        redis_settings=redis,
        max_jobs=settings.worker_concurrency,
        keep_result=60,
        retry_jobs=False,
        handle_signals=False,
        burst=spec.burst,
        poll_delay=spec.poll_delay,
        ctx=dict(ctx),
        on_startup=spec.on_startup,
        on_shutdown=spec.on_shutdown,
        health_check_interval=30,
    )
    cron_jobs = []
    for task in spec.cron_tasks:
        minutes = set(range(0, 60, task.every_minutes))
        cron_jobs.append(
            cron(
                task.coroutine,  # type: ignore[arg-type]
                name=task.name,
                minute=minutes,
                second=task.second,
                run_at_startup=task.run_at_startup,
                timeout=task.timeout_seconds,
                unique=True,
                keep_result=0,
                max_tries=1,
            )
        )
    workers: list[Worker] = [reports]
    if cron_jobs:
        workers.append(
            Worker(
                functions=[],
                cron_jobs=cron_jobs,
                queue_name=settings.scheduler_queue_name,
                redis_settings=redis,
                max_jobs=len(cron_jobs) + 1,
                handle_signals=False,
                burst=spec.burst,
                # arq starts cron jobs from its poll loop: within a second of their time.
                poll_delay=max(spec.poll_delay, CRON_POLL_SECONDS),
                ctx=dict(ctx),
                keep_result=0,
                health_check_interval=30,
            )
        )
    return workers
