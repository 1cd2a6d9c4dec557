"""The lease on a running job: claiming it, the heartbeat that keeps the lease and watches for
a cancel request, a lost lease or a shutdown, and the fenced commit of the finished file.

Only the holder of the current lease (its token) can change the job; a commit that is refused
(another worker took the job over) deletes the file this attempt stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import structlog
from beanie import PydanticObjectId

from app.common.time import utcnow
from app.config import Settings
from app.reports.deliveries import outbox
from app.reports.deliveries.models import ReportDelivery
from app.reports.deliveries.planning import ChooseDeliveries
from app.reports.jobs import repository
from app.reports.jobs.models import JobStatus, JobStep, ReportJob
from app.reports.rendering.base import Figure
from app.reports.schedules.alerts.gate import AlertGate
from app.reports.schedules.changes.gate import ChangeGate
from app.storage import Storage

log = structlog.get_logger(__name__)

HEARTBEAT_RETRY_SECONDS = 0.5


class StopReason(StrEnum):
    CANCELLED = "cancelled"
    LEASE_LOST = "lease-lost"
    SHUTDOWN = "shutdown"


@dataclass
class Progress:
    step: JobStep = JobStep.RESOLVE
    percent: float = 0.0
    rows_processed: int = 0
    rows_total: int | None = None

    def as_update(self) -> dict[str, Any]:
        return {
            "step": self.step.value,
            "percent": round(self.percent, 1),
            "rows_processed": self.rows_processed,
            "rows_total": self.rows_total,
        }


@dataclass
class Run:
    """One attempt at a job, under one lease."""

    job: ReportJob
    token: str
    progress: Progress = field(default_factory=Progress)
    stop_reason: StopReason | None = None
    stored_key: str | None = None  # the file this attempt stored, until it is committed
    index_key: str | None = None  # and the row index stored beside it
    # The summary's figures in each locale the job's messages are written in, for delivery.
    figures: dict[str, list[Figure]] = field(default_factory=dict)
    # A change report's comparison (schedules/changes/), decided in the commit.
    changes: ChangeGate | None = None
    # An alert comparing with the previous period: that period's figures (alerts/periods.py).
    previous_period: dict[str, float | None] | None = None

    @property
    def job_id(self) -> PydanticObjectId:
        assert self.job.id is not None
        return self.job.id


async def claim(job_id: str, *, owner: str, lease_seconds: int) -> Run | None:
    """Takes the job with a fresh lease token, or None if it cannot be claimed now."""
    token = uuid.uuid4().hex
    job = await repository.claim(
        PydanticObjectId(job_id), token=token, owner=owner, lease_seconds=lease_seconds
    )
    return None if job is None else Run(job=job, token=token)


async def heartbeat(
    run: Run, body: asyncio.Task[Any], settings: Settings, shutdown: asyncio.Event
) -> None:
    """Renews the lease and saves progress every ``job_heartbeat_seconds`` until ``body`` is
    done, and in between saves the progress every ``job_progress_seconds`` when it has moved;
    cancels ``body`` (naming the reason in ``run.stop_reason``) on a cancel request, a lost
    lease or a shutdown."""
    interval = settings.job_heartbeat_seconds
    # After a failed renewal, try again soon: a short database stall must not cost the lease.
    retry = min(interval, HEARTBEAT_RETRY_SECONDS)
    delay = interval
    progress = _ProgressSaver(run, settings.job_progress_seconds)
    loop = asyncio.get_running_loop()
    while not body.done():
        await progress.save_until(loop.time() + delay, body, shutdown)
        if body.done():
            return
        if shutdown.is_set():
            run.stop_reason = StopReason.SHUTDOWN
            body.cancel()
            return
        update = run.progress.as_update()
        try:
            doc = await repository.heartbeat(
                run.job_id, run.token, settings.job_lease_seconds, update
            )
        except Exception as exc:  # database away: keep working while the lease lasts
            log.warning("job_heartbeat_failed", error=str(exc)[:200])
            delay = retry
            continue
        progress.saved = update
        delay = interval
        if doc is None:
            run.stop_reason = StopReason.LEASE_LOST
            body.cancel()
            return
        if doc.get("cancel_requested"):
            run.stop_reason = StopReason.CANCELLED
            body.cancel()
            return


class _ProgressSaver:
    """Saves a running job's progress between heartbeats, when it has moved: a PDF's render
    processes move it page by page, and a client polling the job sees it move."""

    def __init__(self, run: Run, every: float) -> None:
        self.run = run
        self.every = every
        self.saved = run.progress.as_update()

    async def save_until(
        self, deadline: float, body: asyncio.Task[Any], shutdown: asyncio.Event
    ) -> None:
        """Waits until ``deadline`` (loop time), a shutdown or the end of ``body``."""
        loop = asyncio.get_running_loop()
        while (left := deadline - loop.time()) > 0:
            try:
                await asyncio.wait_for(shutdown.wait(), timeout=min(left, self.every))
            except TimeoutError:
                pass
            if body.done() or shutdown.is_set() or deadline - loop.time() <= 0:
                return
            update = self.run.progress.as_update()
            if update == self.saved:
                continue
            try:
                await repository.save_progress(self.run.job_id, self.run.token, update)
            except Exception as exc:  # the next heartbeat saves it, and renews the lease
                log.warning("job_progress_save_failed", error=str(exc)[:200])
                continue
            self.saved = update


async def discard_file(storage: Storage, run: Run) -> None:
    """Deletes the file this attempt stored (not committed, or its commit was refused)."""
    keys = [run.stored_key, run.index_key]
    if run.changes is not None:  # its fingerprints and list of changes are no baseline
        keys += [run.changes.outcome.baseline_key, run.changes.outcome.file_key]
    for key in keys:
        if key:
            with contextlib.suppress(Exception):
                await storage.delete(key)
    run.stored_key = run.index_key = None
    run.changes = None


async def commit(
    run: Run,
    storage: Storage,
    settings: Settings,
    prefix: str,
    delivers: outbox.ScheduleDelivers,
) -> bool:
    """Marks the job completed with ``run.job.result`` if this attempt still holds the lease
    and no cancel was asked for (an accepted cancel always wins over a finished file), with
    its deliveries unless its schedule was paused or deleted by then (``delivers``).

    A refused commit deletes the stored file (when a cancel refused it, ``run.stop_reason``
    says so and the caller ends the job cancelled); an accepted one deletes the files earlier,
    interrupted attempts left under ``prefix``.
    """
    job = run.job
    assert job.result is not None
    try:
        ok = await _finish_completed(run, settings, delivers)
    except Exception:
        # The outcome is unknown (e.g. the write applied but its answer was lost): look.
        stored = await repository.get(run.job_id)
        ok = bool(
            stored
            and stored.status == JobStatus.COMPLETED
            and stored.result
            and stored.result.storage_key == job.result.storage_key
        )
        if not ok:
            raise
    if not ok:
        stored = await repository.get(run.job_id)
        if stored and stored.cancel_requested and stored.lease_token == run.token:
            run.stop_reason = StopReason.CANCELLED
        else:
            log.warning("job_commit_refused")  # another worker holds the job now
        await discard_file(storage, run)
        return False
    if run.changes is not None:
        await run.changes.committed()
    # Files of earlier, interrupted attempts of this job are not needed any more.
    with contextlib.suppress(Exception):
        kept = {job.result.storage_key, job.result.row_index_key}
        if run.changes is not None:
            kept.add(run.changes.outcome.file_key)
        for key in await storage.list_keys(prefix):
            if key not in kept:
                await storage.delete(key)
    return True


async def _finish_completed(
    run: Run, settings: Settings, delivers: outbox.ScheduleDelivers
) -> bool:
    result = run.job.result
    assert result is not None
    now = utcnow()
    expires_at = now + timedelta(days=settings.report_retention_days)
    fields = {
        "status": JobStatus.COMPLETED.value,
        "finished_at": now,
        "expires_at": expires_at,
        "result": result.model_dump(),
        "error": None,
        "progress": {**run.progress.as_update(), "step": "finish", "percent": 100.0},
    }
    # The job's deliveries are inserted in the same transaction as this fenced update, with
    # its schedule's alert decision (which of them go out) and the state that moves.
    gate = AlertGate(run.job, run.figures, run.previous_period) if run.job.schedule_id else None
    choose = _chain(gate.choose if gate else None, run.changes.choose if run.changes else None)
    ok = await outbox.commit_completed(
        run.job,
        result,
        expires_at,
        settings,
        # An accepted cancel wins: the job completes only while no cancel was requested.
        lambda session: repository.finish_held(
            run.job_id,
            run.token,
            fields,
            only_if={"cancel_requested": {"$ne": True}},
            session=session,
        ),
        delivers=delivers,
        figures=run.figures,
        choose=choose,
    )
    if ok and gate is not None:
        gate.committed()
    return ok


def _chain(
    first: ChooseDeliveries | None, then: ChooseDeliveries | None
) -> ChooseDeliveries | None:
    """The alert decides first (whether the run is sent at all), then the change report (what
    the messages say, and whether the baseline moves)."""
    if first is None or then is None:
        return first or then

    async def both(deliveries: Sequence[ReportDelivery], session: Any) -> Sequence[ReportDelivery]:
        assert first is not None and then is not None
        return await then(await first(deliveries, session), session)

    return both
