"""``JobExecutor``: what the worker runs for one report job, composed of the lease
(``lease``), the file's production (``pipeline``) and the attempt's outcome (``outcome``)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from app.observability import JOBS_ACTIVE, observe_job
from app.reports.deliveries import outbox
from app.reports.execution import lease, pipeline
from app.reports.execution.lease import Run
from app.reports.execution.outcome import Outcome
from app.reports.jobs import repository
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.schedules.alerts import periods
from app.runtime.resources import Resources

log = structlog.get_logger(__name__)


class JobExecutor:
    def __init__(
        self,
        resources: Resources,
        worker_id: str,
        shutdown: asyncio.Event,
        *,
        delivers: outbox.ScheduleDelivers,
    ) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.worker_id = worker_id
        self.shutdown = shutdown
        # Asked in the final commit's transaction: does the job's schedule still deliver?
        self.delivers = delivers
        self.claimed: ReportJob | None = None  # the job as claimed by the last `run`

    async def run(self, job_id: str) -> JobStatus | None:
        """Runs the job if it can be claimed; returns its final status (None if not ours)."""
        run = await lease.claim(
            job_id, owner=self.worker_id, lease_seconds=self.settings.job_lease_seconds
        )
        self.claimed = run.job if run else None
        if run is None:
            log.info("job_not_claimable", job_id=job_id)
            return None
        job = run.job
        structlog.contextvars.bind_contextvars(job_id=job_id, request_id=job.request_id)
        budget = job.attempt_budget(self.settings.job_attempts_cap)
        if job.attempt > budget:
            await repository.fail_over_attempts(
                run.job_id,
                run.token,
                f"Gave up after {budget} attempts (the worker running it stopped).",
            )
            return JobStatus.FAILED
        started, cpu_started = time.monotonic(), time.process_time()
        JOBS_ACTIVE.inc()
        body = asyncio.create_task(self._produce(run))
        beat = asyncio.create_task(lease.heartbeat(run, body, self.settings, self.shutdown))
        try:
            outcome = Outcome(self.resources, run, self.delivers)
            status = await outcome.settle(body, lambda: self._commit(run))
        finally:
            beat.cancel()
            with contextlib.suppress(BaseException):
                await beat
            JOBS_ACTIVE.dec()
        if status is not None:
            observe_job(job.report_type, job.format, status.value, time.monotonic() - started)
        log.info(
            "job_finished",
            status=status.value if status else "released",
            attempt=job.attempt,
            seconds=round(time.monotonic() - started, 3),
            # CPU of the whole worker process meanwhile (other jobs running at once included).
            process_cpu_seconds=round(time.process_time() - cpu_started, 3),
            rows=run.progress.rows_processed,
        )
        return status

    async def _produce(self, run: Run) -> None:
        """The file, then (when the schedule's alert compares with the previous period) that
        period's figures: both under the lease's heartbeat, before the commit decides."""
        await pipeline.produce(run, self.resources)
        run.previous_period = await periods.for_run(run.job, self.settings.fetch_batch_size)

    async def _commit(self, run: Run) -> bool:
        return await lease.commit(
            run,
            self.resources.storage,
            self.settings,
            pipeline.storage_prefix(run.job),
            self.delivers,
        )


__all__ = ["JobExecutor"]
