"""Producing a job's file: the report definition's rows, fetched in batches, go into the
format's ``RowSink`` (CSV, Excel or PDF alike); the file is then stored.

resolve -> count (alongside the fetch) -> fetch + render -> store -> finish

The file goes to storage as it is produced (``storing``): a CSV's bytes while the rows arrive
(its ``store`` step only sends the last part), an Excel or PDF file from a bounded temporary
directory once it is complete.

Progress: ``count`` 2 %, then ``fetch``; a format that streams (CSV, Excel) is written while
the rows arrive (step ``render`` from the start, 5-90 %), a PDF is mostly laid out after the
fetch (``fetch`` 5-45 %, then ``render`` 45-90 %, following its render processes page by page
and then its join); ``store`` 92 %, ``finish`` 99 %. The percent never goes back.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from app.common.time import utcnow
from app.i18n import DEFAULT_LOCALE, LOCALES, locale_spec, translate, use_locale
from app.lookups import validation
from app.observability import observe_rows
from app.reports.execution.lease import Progress, Run
from app.reports.execution.outcome import PermanentJobError
from app.reports.execution.storing import FileUpload
from app.reports.formats import FormatSpec, SinkOptions, get_format
from app.reports.jobs.models import JobResult, JobStep, ReportJob, row_index_key
from app.reports.reading.progress import READ_PROGRESS
from app.reports.rendering import RenderContext, RowSink
from app.reports.rendering.choice import ColumnChoice
from app.reports.rendering.present import Presentation, definitions, localised
from app.reports.rendering.totals import totals_row, with_values
from app.reports.schedules.changes.runs import (
    compared,
    file_section,
    marked,
    pinned,
    tracker_for,
)
from app.reports.types import Figure, Summarizer, figure_definitions, get_report_type
from app.reports.types.choice import stored_choice
from app.reports.types.totals import TotalsAccumulator
from app.runtime.resources import Resources
from app.security import DataScope


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "report"


REPORTS_PREFIX = "reports/"  # every report file is stored below it


def storage_prefix(job: ReportJob) -> str:
    """Where every attempt of ``job`` stores its file (``a<attempt>/<file name>`` below it)."""
    created = job.created_at
    return f"{REPORTS_PREFIX}{created:%Y/%m/%d}/{job.id}/"


def file_name_for(job: ReportJob) -> str:
    """`learner-progress-20261130-1443-9f3a2c.xlsx`: type, time, and the job id's last six hex
    digits (its counter part), so two jobs of the same minute never share a name."""
    stamp = (job.scheduled_for or job.created_at).strftime("%Y%m%d-%H%M")
    short_id = str(job.id)[-6:] if job.id is not None else "report"
    return get_format(job.format).file_name(f"{_slug(job.report_type)}-{stamp}-{short_id}")


async def produce(run: Run, resources: Resources) -> None:
    """Writes and stores the job's file; leaves its ``JobResult`` on ``run.job.result`` and
    the stored key on ``run.stored_key`` (for the commit, or for deleting it)."""
    job, progress, settings = run.job, run.progress, resources.settings
    definition = get_report_type(job.report_type)
    resolved = dict(job.resolved_parameters or {})
    scope = DataScope.from_document(job.scope or {})
    try:
        spec = get_format(job.format)
    except KeyError:  # stored before its format was withdrawn: no attempt can produce it
        raise PermanentJobError(
            "report-format-not-available", f"The format {job.format!r} is no longer offered."
        ) from None

    progress.step, progress.percent = JobStep.COUNT, 2.0
    # The count runs alongside the fetch, so it adds no wait of its own (none when the read
    # counts its rows as it sorts them); the row limit is checked as soon as it is known, and
    # against the rows seen so far.
    rows = RowTotal(
        asyncio.create_task(definition.count(resolved, scope, alongside=True)),
        spec.row_limit(settings),
        job.format,
        progress,
    )
    try:
        await validation.refresh()  # the labels files print come from the lookup table
        locale = job.locale if job.locale in LOCALES else DEFAULT_LOCALE
        columns = localised(definition.columns_for(resolved), locale)
        for_people = spec.for_people
        # PDF and Excel are for people: labels for codes, Yes / No, no machine-only columns,
        # names in the Parameters block; CSV and JSON Lines keep codes unless the job asked for
        # labels. Words are in the job's locale; JSON Lines cells stay machine formats.
        # The job's choice of columns: the sink gets the chosen cells in the chosen order; the
        # summary still sees whole rows.
        choice = ColumnChoice(tuple(stored_choice(definition, resolved, job.columns)))
        presentation = Presentation.of(
            columns,
            {c.lookup: validation.labels(c.lookup, locale) for c in columns if c.lookup},
            for_people=for_people,
            with_labels=True if job.options.labels else None,
            cells=definition.cells_for_people(resolved),
            locale=locale,
            kept=spec.kept_columns,
        )
        presentation = choice.narrow(columns, presentation)
        summarizer = definition.summarizer(resolved)
        with use_locale(locale):  # the parameters and figures as people read them
            parameters = (
                await definition.describe_for_people(resolved, scope)
                if for_people
                else definition.describe(resolved)
            )
            shown_figures = summarizer.figures()
        context = RenderContext(
            title=translate(locale, definition.name),
            report_type=definition.key,
            report_name=translate(locale, definition.name),
            format=job.format,
            timezone=str(resolved.get("timezone") or "UTC"),
            generated_at=utcnow(),
            parameters=parameters,
            summary=[],
            # Which figures the summary shows does not depend on the rows: their definitions
            # are known before the first row.
            definitions=definitions(presentation.columns, shown_figures),
            total_rows=None,
            row_cap=spec.row_cap(settings),
            requested_by=job.requested_by.name,
            locale=locale,
            totals=totals_row(definition.totals_for(resolved), locale) if for_people else None,
        )
        # The totals row's figures, over the raw rows (every column), in the same pass.
        totals = TotalsAccumulator(columns, context.totals.totals if context.totals else {})
        separators = locale_spec(locale)
        options = SinkOptions(
            csv_delimiter=job.options.csv_delimiter or separators.csv_delimiter,
            csv_decimal=job.options.csv_decimal or separators.csv_decimal,
            csv_bom=job.options.csv_bom,
            pdf_chunk_rows=settings.pdf_chunk_rows,
            pdf_direct_tables=settings.pdf_direct_tables,
            render_processes=settings.render_processes,
            max_rows=spec.row_cap(settings),
        )
        summarizer = definition.summarizer(resolved)
        # Fed in the same pass as the summary: aggregated series, never a second read.
        charting = definition.charting(resolved) if job.options.charts else None
        with use_locale(locale):
            context = replace(context, figure_definitions=figure_definitions(summarizer))
        workdir = Path(tempfile.mkdtemp(prefix=f"report-{job.id}-"))
        path = workdir / file_name_for(job)
        key = f"{storage_prefix(job)}a{job.attempt}/{path.name}"
        # A change report's fingerprints, in the same pass (schedules/changes/).
        changes = tracker_for(job, [c.key for c in columns], workdir)
        upload = FileUpload(resources.storage, key, spec, path, settings.report_scratch_max_mb)
        try:
            progress.step, progress.percent = JobStep.FETCH, 5.0
            if changes is not None:  # the baseline pinned; CSV / JSON Lines mark each row
                presentation, context = await pinned(
                    job, changes, resources.storage, presentation, context
                )
            options = replace(options, output=upload.pipe)  # where a CSV's bytes go
            sink = await spec.open_sink(path, presentation.columns, context, options)
            sink.expect_rows(rows.known_total())
            fetch_share = 85.0 if spec.streams else 40.0
            rows.start, rows.share = progress.percent, fetch_share
            if spec.streams:
                progress.step = JobStep.RENDER
            reading = READ_PROGRESS.set(rows)  # the fact read reports how far it has got
            try:
                try:
                    fetch = definition.fetch(
                        resolved, scope, settings.fetch_batch_size, choice.keys
                    )
                    async for batch in fetch:
                        summarizer.add(batch)
                        totals.add(batch)
                        if charting is not None:
                            charting.add(batch)
                        marks = changes.add(batch) if changes is not None else None
                        rows.add(len(batch))
                        sink.expect_rows(rows.known_total())
                        await sink.add(marked(presentation.rows(batch), marks))
                        await upload.after_batch()
                        rows.advance()
                finally:
                    READ_PROGRESS.reset(reading)
                if not spec.streams:
                    progress.step, progress.percent = JobStep.RENDER, max(progress.percent, 45.0)
                run.figures = summary_in_locales(summarizer, job, locale)
                if changes is not None:
                    stem = path.name.rsplit(".", 1)[0]
                    prefix = f"{storage_prefix(job)}a{job.attempt}/"
                    run.changes = await compared(job, changes, resources.storage, prefix, stem)
                final = replace(
                    context,
                    summary=run.figures[locale],
                    total_rows=progress.rows_processed,
                    totals=with_values(context.totals, totals.result()),
                    charts=charting.specs(locale) if charting is not None else [],
                    changes=(
                        file_section(run.changes, changes, locale)
                        if run.changes and changes
                        else None
                    ),
                )
                follow = asyncio.create_task(follow_layout(sink, progress, 5.0 + fetch_share))
                try:
                    await sink.finish(final)
                finally:
                    follow.cancel()
            except BaseException:
                sink.abort()  # failed or cancelled: render processes and temporary files go now
                raise
            if progress.rows_total is None:  # streamed before the count came back
                progress.rows_total = progress.rows_processed
            observe_rows(job.report_type, job.format, sink.rows_written)
            await _store(run, spec, path.name, sink, upload)
            if changes is not None and changes.marking and job.result is not None:
                job.result.change_column = True  # `/rows` reads the column back
            progress.step, progress.percent = JobStep.FINISH, 99.0
        finally:
            # Not committed (an error, a cancel): no object and no open upload stay behind.
            await upload.abort()
            await asyncio.to_thread(shutil.rmtree, workdir, True)
    finally:
        rows.cancel()


def summary_in_locales(
    summarizer: Summarizer, job: ReportJob, locale: str
) -> dict[str, list[Figure]]:
    """The summary figures in the job's locale (the file's) and in each recipient's (the
    delivery messages quote them)."""
    wanted = {locale}
    if job.delivery is not None:
        wanted |= {r.locale for r in job.delivery.recipients if r.locale and r.locale in LOCALES}
    figures: dict[str, list[Figure]] = {}
    for code in sorted(wanted):
        with use_locale(code):
            figures[code] = list(summarizer.figures())
    return figures


async def _store(
    run: Run, spec: FormatSpec, file_name: str, sink: RowSink, upload: FileUpload
) -> None:
    job, progress = run.job, run.progress
    progress.step, progress.percent = JobStep.STORE, max(progress.percent, 92.0)
    # Named before the upload is committed: whatever happens from here on (a failed or refused
    # commit, a cancel), the object under this key is deleted.
    run.stored_key = upload.key
    stored = await upload.complete()
    written = sink.rows_written
    index_key = None
    if sink.row_index is not None:  # beside the file: where every 1,000th row starts
        run.index_key = index_key = row_index_key(upload.key)
        await upload.storage.write_stream(
            index_key, _once(sink.row_index.to_bytes()), "application/json"
        )
    job.result = JobResult(
        file_name=file_name,
        content_type=spec.content_type,
        size_bytes=stored.size_bytes,
        row_count=written,
        checksum_sha256=stored.checksum_sha256,
        storage_key=upload.key,
        truncated=spec.truncates and progress.rows_processed > written,
        total_rows=progress.rows_processed,
        row_index_key=index_key,
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


LAYOUT_POLL_SECONDS = 0.25
LAID_OUT = 90.0  # the percent once the file is written (``store`` follows at 92 %)


async def follow_layout(sink: RowSink, progress: Progress, start: float) -> None:
    """Moves the progress from `start` towards ``LAID_OUT`` as the sink lays the rows out (a
    PDF's render processes report page by page after the fetch)."""
    while True:
        total = sink.rows_written
        if total:
            share = min(1.0, sink.rows_laid_out / total)
            progress.percent = max(progress.percent, start + (LAID_OUT - start) * share)
        await asyncio.sleep(LAYOUT_POLL_SECONDS)


class RowTotal:
    """The report's row count, arriving while the rows stream in (from the count, or from the
    worker's sort once the whole read is done), and the job's progress through its rows: the
    rows written of the total and, while a read goes on without rows to show, the share of
    the read done (`ReadProgress`, from the fact read)."""

    def __init__(
        self, counting: asyncio.Task[int | None], limit: int | None, fmt: str, progress: Progress
    ) -> None:
        self.counting = counting
        self.limit = limit
        self.fmt = fmt
        self.progress = progress
        self.start, self.share = 5.0, 85.0  # the percent the rows move through
        self.read_share = 0.0
        self.rows_follow = False  # no row comes before the whole read (ordered in the worker)
        # The total shows in the job's progress as soon as the count is back, not only with
        # the next batch of rows.
        counting.add_done_callback(self._counted)

    def _counted(self, counting: asyncio.Task[int | None]) -> None:
        if counting.cancelled() or counting.exception() is not None:
            return  # a failed count fails the job with the next batch (see `add`)
        if self.progress.rows_total is None:
            self.progress.rows_total = counting.result()

    def add(self, batch_rows: int) -> None:
        progress = self.progress
        progress.rows_processed += batch_rows
        if progress.rows_total is None and self.counting.done():
            progress.rows_total = self.counting.result()  # a failed count fails the job
        self._check_limit()

    def reading(self, share: float, *, rows_follow: bool) -> None:
        self.read_share = max(self.read_share, min(share, 1.0))
        self.rows_follow = rows_follow
        self.advance()

    def fetched(self, docs: int) -> None:
        """The job follows the share of the read, not the documents."""

    def counted(self, rows: int) -> None:
        if self.progress.rows_total is None:
            self.progress.rows_total = rows
        self._check_limit()  # before any row is written

    def advance(self) -> None:
        """Moves the percent on (never back)."""
        percent = self.start + self.share * self.ratio()
        self.progress.percent = max(self.progress.percent, percent)

    def _check_limit(self) -> None:
        progress = self.progress
        known = max(progress.rows_total or 0, progress.rows_processed)
        if self.limit is not None and known > self.limit:
            raise PermanentJobError(
                "row-limit-exceeded",
                f"The report has {'more than ' if progress.rows_total is None else ''}"
                f"{known} rows; {self.fmt} reports are limited to {self.limit}. "
                "Narrow the date range or filters.",
            )

    def known_total(self) -> int | None:
        """The row count if it is known already (without waiting for the count)."""
        if self.progress.rows_total is not None:
            return self.progress.rows_total
        if self.counting.done() and not self.counting.cancelled() and not self.counting.exception():
            return self.counting.result()
        return None

    def ratio(self) -> float:
        """The share of the job's rows done: the rows written of the total; for rows that wait
        for the whole read, half for the read and half for the rows; else at least the share
        of the read done (rows come as it goes)."""
        total = self.progress.rows_total
        if total is None:
            written = 0.0
        else:
            written = 1.0 if total == 0 else min(1.0, self.progress.rows_processed / total)
        if self.rows_follow:
            return 0.5 * self.read_share + 0.5 * written
        return max(written, self.read_share)

    def cancel(self) -> None:
        if not self.counting.done():
            self.counting.cancel()
        elif not self.counting.cancelled():
            self.counting.exception()  # retrieved, so a failed count is never "unobserved"


__all__ = ["REPORTS_PREFIX", "RowTotal", "file_name_for", "produce", "storage_prefix"]
