"""The step-by-step executor the worker runs for one report job.

resolve -> count -> fetch (streamed in batches) -> render -> store -> finish

The job is claimed atomically in MongoDB with a lease; a heartbeat keeps the lease alive, saves
progress and notices cancel requests, lost leases and worker shutdown, and then cancels the
work (rendering included: PDF pages are laid out in separate processes that are killed). Only
the holder of the current lease can commit; a refused commit deletes the file it stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog
from beanie import PydanticObjectId
from pydantic import ValidationError

from app.common.time import utcnow
from app.errors import AppError
from app.observability import JOB_DURATION, JOB_ROWS, JOBS_ACTIVE, JOBS_FINISHED
from app.reports.jobs import repository
from app.reports.jobs.dispatch import dispatch
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.rendering.base import CONTENT_TYPES, FILE_EXTENSIONS, RenderContext, open_writer
from app.reports.rendering.pdf import StreamingPdf
from app.reports.types import get_report_type
from app.runtime.resources import Resources
from app.security import DataScope
from app.storage.base import file_chunks

log = structlog.get_logger(__name__)


def _error_kind(exc: Exception) -> str:
    module = type(exc).__module__
    if module.startswith(("pymongo", "bson")):
        return "database"
    if module.startswith(("botocore", "aiobotocore", "boto3")) or isinstance(exc, OSError):
        return "storage"
    if module.startswith("redis"):
        return "queue"
    return "processing"


class StopReason(StrEnum):
    CANCELLED = "cancelled"
    LEASE_LOST = "lease-lost"
    SHUTDOWN = "shutdown"


class PermanentJobError(Exception):
    """A failure that another attempt cannot fix (bad parameters, limits, missing type)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Progress:
    step: str = "resolve"
    percent: float = 0.0
    rows_processed: int = 0
    rows_total: int | None = None

    def as_update(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "percent": round(self.percent, 1),
            "rows_processed": self.rows_processed,
            "rows_total": self.rows_total,
        }


@dataclass
class Run:
    job: ReportJob
    token: str
    progress: Progress = field(default_factory=Progress)
    stop_reason: StopReason | None = None
    stored_key: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "report"


def storage_prefix(job: ReportJob) -> str:
    created = job.created_at
    return f"reports/{created:%Y/%m/%d}/{job.id}/"


def file_name_for(job: ReportJob) -> str:
    stamp = (job.scheduled_for or job.created_at).strftime("%Y%m%d-%H%M")
    return f"{_slug(job.report_type)}-{stamp}{FILE_EXTENSIONS[job.format]}"


class JobExecutor:
    def __init__(self, resources: Resources, worker_id: str, shutdown: asyncio.Event) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.worker_id = worker_id
        self.shutdown = shutdown
        self.claimed: ReportJob | None = None  # the job as claimed by the last `run`

    async def run(self, job_id: str) -> JobStatus | None:
        """Runs the job if it can be claimed; returns its final status (None if not ours)."""
        oid = PydanticObjectId(job_id)
        token = uuid.uuid4().hex
        job = await repository.claim(
            oid, token=token, owner=self.worker_id, lease_seconds=self.settings.job_lease_seconds
        )
        self.claimed = job
        if job is None:
            log.info("job_not_claimable", job_id=job_id)
            return None
        structlog.contextvars.bind_contextvars(job_id=job_id, request_id=job.request_id)
        if job.attempt > job.max_attempts:
            await repository.fail_over_attempts(
                oid,
                token,
                f"Gave up after {job.max_attempts} attempts (the worker running it stopped).",
            )
            return JobStatus.FAILED
        run = Run(job=job, token=token)
        started, cpu_started = time.monotonic(), time.process_time()
        JOBS_ACTIVE.inc()
        body = asyncio.create_task(self._execute(run))
        beat = asyncio.create_task(self._heartbeat(run, body))
        try:
            status = await self._settle(run, body)
        finally:
            beat.cancel()
            with contextlib.suppress(BaseException):
                await beat
            JOBS_ACTIVE.dec()
        if status is not None:
            JOBS_FINISHED.labels(status.value, job.format).inc()
            JOB_DURATION.labels(job.format).observe(time.monotonic() - started)
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

    async def _heartbeat(self, run: Run, body: asyncio.Task[Any]) -> None:
        assert run.job.id is not None
        interval = self.settings.job_heartbeat_seconds
        while not body.done():
            try:
                await asyncio.wait_for(self.shutdown.wait(), timeout=interval)
            except TimeoutError:
                pass
            if body.done():
                return
            if self.shutdown.is_set():
                run.stop_reason = StopReason.SHUTDOWN
                body.cancel()
                return
            try:
                doc = await repository.heartbeat(
                    run.job.id, run.token, self.settings.job_lease_seconds, run.progress.as_update()
                )
            except Exception as exc:  # database away: keep working while the lease lasts
                log.warning("job_heartbeat_failed", error=str(exc)[:200])
                continue
            if doc is None:
                run.stop_reason = StopReason.LEASE_LOST
                body.cancel()
                return
            if doc.get("cancel_requested"):
                run.stop_reason = StopReason.CANCELLED
                body.cancel()
                return

    async def _settle(self, run: Run, body: asyncio.Task[Any]) -> JobStatus | None:
        job = run.job
        assert job.id is not None
        try:
            await body
            return JobStatus.COMPLETED if await self._commit(run) else None
        except asyncio.CancelledError:
            if run.stop_reason is None:  # the worker itself is being cancelled
                run.stop_reason = StopReason.SHUTDOWN
                await asyncio.shield(self._release(run))
                raise
            return await self._stopped(run)
        except Exception as exc:
            return await self._failed(run, exc)

    async def _stopped(self, run: Run) -> JobStatus | None:
        assert run.job.id is not None
        await self._discard_file(run)
        if run.stop_reason == StopReason.CANCELLED:
            ok = await repository.finish_cancelled_if_requested(run.job.id, run.token)
            return JobStatus.CANCELLED if ok else None
        if run.stop_reason == StopReason.SHUTDOWN:
            await self._release(run)
        return None

    async def _release(self, run: Run) -> None:
        """Clean shutdown: hand the job back without spending an attempt, ring the doorbell."""
        assert run.job.id is not None
        await self._discard_file(run)
        with contextlib.suppress(Exception):
            if await repository.finish_cancelled_if_requested(run.job.id, run.token):
                return
            released = await repository.finish_held(
                run.job.id,
                run.token,
                {"status": JobStatus.QUEUED.value, "progress.step": "queued", "available_at": None},
                inc={"attempt": -1},
            )
            if released:
                await dispatch(self.resources, run.job)

    async def _failed(self, run: Run, exc: Exception) -> JobStatus | None:
        job = run.job
        assert job.id is not None
        await self._discard_file(run)
        permanent = isinstance(exc, PermanentJobError | AppError | ValidationError | LookupError)
        if isinstance(exc, PermanentJobError):
            code, message = exc.code, exc.message
        elif isinstance(exc, AppError):
            code, message = exc.code, str(exc.detail or exc.title)
        elif permanent:
            code, message = "invalid-report-request", str(exc).splitlines()[0][:300]
        else:
            # Driver and storage errors can name hosts and URLs: those stay in the log.
            log.warning("job_attempt_failed", error=str(exc)[:500], error_type=type(exc).__name__)
            code = "transient-error"
            message = (
                f"A temporary {_error_kind(exc)} error interrupted the report "
                f"(request id {job.request_id or 'n/a'})."
            )
        if permanent or job.attempt >= job.max_attempts:
            if not permanent:
                message = f"Gave up after {job.attempt} attempts; last error: {message}"
                log.error("job_failed", error=message, exc_info=exc)
            else:
                log.warning("job_failed", code=code, error=message)
            ok = await repository.finish_held(
                job.id,
                run.token,
                {
                    "status": JobStatus.FAILED.value,
                    "finished_at": utcnow(),
                    "error": {"code": code, "message": message, "transient": not permanent},
                },
            )
            return JobStatus.FAILED if ok else None
        if await repository.finish_cancelled_if_requested(job.id, run.token):
            return JobStatus.CANCELLED
        delay = self.settings.job_retry_backoff_seconds * (2 ** (job.attempt - 1))
        log.warning("job_retry_scheduled", error=message, attempt=job.attempt, delay=delay)
        ok = await repository.finish_held(
            job.id,
            run.token,
            {
                "status": JobStatus.QUEUED.value,
                "available_at": utcnow() + timedelta(seconds=delay),
                "progress.step": "queued",
                "error": {"code": code, "message": message, "transient": True},
            },
        )
        if ok:
            await dispatch(self.resources, job, defer_seconds=delay)
        return JobStatus.QUEUED if ok else None

    async def _discard_file(self, run: Run) -> None:
        if run.stored_key:
            with contextlib.suppress(Exception):
                await self.resources.storage.delete(run.stored_key)
            run.stored_key = None

    async def _commit(self, run: Run) -> bool:
        job = run.job
        assert job.id is not None and job.result is not None
        now = utcnow()
        try:
            ok = await self._finish_completed(run, now)
        except Exception:
            # The outcome is unknown (e.g. the write applied but its answer was lost): look.
            stored = await repository.get(job.id)
            ok = bool(
                stored
                and stored.status == JobStatus.COMPLETED
                and stored.result
                and stored.result.storage_key == job.result.storage_key
            )
            if not ok:
                raise
        if not ok:
            log.warning("job_commit_refused")  # another worker holds the job now
            await self._discard_file(run)
            return False
        # Files of earlier, interrupted attempts of this job are not needed any more.
        with contextlib.suppress(Exception):
            for key in await self.resources.storage.list_keys(storage_prefix(job)):
                if key != job.result.storage_key:
                    await self.resources.storage.delete(key)
        return True

    async def _finish_completed(self, run: Run, now: datetime) -> bool:
        job = run.job
        assert job.id is not None and job.result is not None
        return await repository.finish_held(
            job.id,
            run.token,
            {
                "status": JobStatus.COMPLETED.value,
                "finished_at": now,
                "expires_at": now + timedelta(days=self.settings.report_retention_days),
                "result": job.result.model_dump(),
                "error": None,
                "progress": {**run.progress.as_update(), "step": "finish", "percent": 100.0},
            },
        )

    async def _execute(self, run: Run) -> None:
        job = run.job
        progress = run.progress
        settings = self.settings
        definition = get_report_type(job.report_type)
        resolved = dict(job.resolved_parameters or {})
        scope = DataScope.from_document(job.scope or {})

        progress.step, progress.percent = "count", 2.0
        limit = {"csv": settings.csv_max_rows, "xlsx": settings.xlsx_max_rows}.get(job.format)
        # The count runs alongside the fetch, so it adds no wait of its own; the row limit is
        # checked as soon as it is known, and against the rows seen so far.
        rows = _RowTotal(
            asyncio.create_task(definition.count(resolved, scope)), limit, job.format, progress
        )
        try:
            await self._produce(run, definition, resolved, scope, rows)
        finally:
            rows.cancel()

    async def _produce(
        self,
        run: Run,
        definition: Any,
        resolved: dict[str, Any],
        scope: DataScope,
        rows: _RowTotal,
    ) -> None:
        job, progress, settings = run.job, run.progress, self.settings
        columns = definition.columns_for(resolved)
        context = RenderContext(
            title=definition.name,
            report_type=definition.key,
            format=job.format,
            timezone=str(resolved.get("timezone") or "UTC"),
            generated_at=utcnow(),
            parameters=definition.describe(resolved),
            summary=[],
            total_rows=None,
            row_cap=settings.pdf_max_rows if job.format == "pdf" else None,
            requested_by=job.requested_by.name,
        )
        summarizer = definition.summarizer(resolved)
        workdir = Path(tempfile.mkdtemp(prefix=f"report-{job.id}-"))
        try:
            path = workdir / file_name_for(job)
            progress.step, progress.percent = "fetch", 5.0
            fetch_share = 85.0 if job.format != "pdf" else 40.0
            if job.format == "pdf":
                # Detail chunks are laid out while later rows are still being fetched.
                pdf = StreamingPdf(
                    columns,
                    context,
                    chunk_rows=settings.pdf_chunk_rows,
                    processes=settings.render_processes,
                    max_rows=settings.pdf_max_rows,
                    expected_rows=rows.known_total(),
                )
                try:
                    async for batch in definition.fetch(resolved, scope, settings.fetch_batch_size):
                        summarizer.add(batch)
                        if pdf.expected_rows is None:
                            pdf.expected_rows = rows.known_total()
                        pdf.add(batch)
                        rows.add(len(batch))
                        progress.percent = 5.0 + fetch_share * rows.ratio()
                    context = replace(
                        context, summary=summarizer.figures(), total_rows=progress.rows_processed
                    )
                    progress.step, progress.percent = "render", 45.0
                    await pdf.finish(path, context)
                except BaseException:
                    pdf.abort()  # cancelled or failed: the render processes stop now
                    raise
                finally:
                    pdf.close()
                written = len(pdf.rows)
            else:
                options = {"bom": job.options.csv_bom} if job.format == "csv" else {}
                writer = await asyncio.to_thread(
                    open_writer, job.format, path, columns, context, **options
                )
                progress.step = "render"
                try:
                    async for batch in definition.fetch(resolved, scope, settings.fetch_batch_size):
                        summarizer.add(batch)
                        rows.add(len(batch))
                        await asyncio.to_thread(writer.write_rows, batch)
                        progress.percent = 5.0 + fetch_share * rows.ratio()
                except BaseException:
                    # Failed or cancelled: drop the writer's temporary files now (the whole
                    # work folder goes too) rather than closing a half-written file.
                    with contextlib.suppress(Exception):
                        writer.abort()
                    raise
                await asyncio.to_thread(writer.close, summarizer.figures())
                written = writer.rows_written
            if progress.rows_total is None:  # streamed before the count came back
                progress.rows_total = progress.rows_processed
            JOB_ROWS.labels(job.format).inc(written)

            progress.step, progress.percent = "store", 92.0
            key = f"{storage_prefix(job)}a{job.attempt}/{path.name}"
            run.stored_key = key
            stored = await self.resources.storage.write_stream(
                key, file_chunks(path), CONTENT_TYPES[job.format]
            )
            from app.reports.jobs.models import JobResult

            job.result = JobResult(
                file_name=path.name,
                content_type=CONTENT_TYPES[job.format],
                size_bytes=stored.size_bytes,
                row_count=written,
                checksum_sha256=stored.checksum_sha256,
                storage_key=key,
                truncated=job.format == "pdf" and progress.rows_processed > written,
                total_rows=progress.rows_processed,
            )
            progress.step, progress.percent = "finish", 99.0
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)


class _RowTotal:
    """The report's row count, arriving while the rows stream in."""

    def __init__(
        self, counting: asyncio.Task[int], limit: int | None, fmt: str, progress: Progress
    ) -> None:
        self.counting = counting
        self.limit = limit
        self.fmt = fmt
        self.progress = progress

    def add(self, batch_rows: int) -> None:
        progress = self.progress
        progress.rows_processed += batch_rows
        if progress.rows_total is None and self.counting.done():
            progress.rows_total = self.counting.result()  # a failed count fails the job
        known = max(progress.rows_total or 0, progress.rows_processed)
        if self.limit is not None and known > self.limit:
            raise PermanentJobError(
                "row-limit-exceeded",
                f"The report has {'more than ' if progress.rows_total is None else ''}"
                f"{known} rows; {self.fmt} reports are limited to {self.limit}. "
                "Narrow the date range or filters.",
            )

    def known_total(self) -> int | None:
        """The row count if it has come back already (without waiting for it)."""
        if self.counting.done() and not self.counting.cancelled() and not self.counting.exception():
            return self.counting.result()
        return None

    def ratio(self) -> float:
        total = self.progress.rows_total
        if total is None:
            return 0.0
        return 1.0 if total == 0 else min(1.0, self.progress.rows_processed / total)

    def cancel(self) -> None:
        if not self.counting.done():
            self.counting.cancel()
        elif not self.counting.cancelled():
            self.counting.exception()  # retrieved, so a failed count is never "unobserved"
