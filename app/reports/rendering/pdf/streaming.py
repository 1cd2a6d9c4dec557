"""Rendering a PDF in chunks in separate processes while its rows are still arriving."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from app.common.children import guard_child
from app.reports.rendering.base import Column, RenderContext
from app.reports.rendering.pdf.layout import LAYOUT_SAMPLE, Layout, plan_layout
from app.reports.rendering.pdf.processes import (
    RenderChunk,
    ignore_failure,
    kill_workers,
    limit_processes,
    merge_and_stamp,
    process_died,
    render_chunk,
    warm_up,
    watch,
)
from app.reports.rendering.pdf.progress import progress_path, read_share

# Shares of a PDF's work after the fetch (see docs/performance.md): starting the render
# processes (mostly done while the rows are fetched, but not for a small PDF; measured on tagged
# 1,000- and 5,000-row PDFs) and the join (structure trees, page numbers, writing the file:
# 0.33 of a direct-written 5,000-row PDF's time, 0.51 of a 50,000-row one's).
STARTUP_SHARE = 0.06
JOIN_SHARE = 0.3
JOIN_PROGRESS = "join.progress"
# A WeasyPrint row's cost in direct-written ones (91 and 3,378 rows per CPU second), for progress.
WEASYPRINT_COST = 30


async def render_pdf(
    path: Path,
    columns: Sequence[Column],
    rows: list[tuple[Any, ...]],
    context: RenderContext,
    *,
    chunk_rows: int,
    processes: int,
    direct_tables: bool = True,
) -> int:
    """Renders ``rows`` (already capped by the caller) to ``path``; returns the page count.

    ``context.total_rows`` larger than ``len(rows)`` puts a truncation notice on page one.
    ``chunk_rows`` is the most rows one render process lays out at a time; ``processes`` how
    many render processes run at once; ``direct_tables``: chunks after page one's by the
    direct table writer (``direct``) where it can."""
    pdf = StreamingPdf(
        columns,
        context,
        chunk_rows=chunk_rows,
        processes=processes,
        max_rows=len(rows),
        direct_tables=direct_tables,
    )
    try:
        pdf.add(rows)
        return await pdf.finish(path, context)
    finally:
        pdf.close()


class StreamingPdf:
    """A PDF whose detail chunks are laid out while its rows are still arriving.

    ``add`` keeps up to ``max_rows`` rows and hands every complete chunk but the first to the
    render processes at once, so rendering overlaps the database fetch; ``finish`` renders the
    rest and the first chunk (page one shows the summary, known only at the end), joins the
    chunks and stamps the page numbers. Column widths come from the first 1,000 rows (or all of
    them if fewer), exactly as if the whole list had been known up front. ``close`` (always
    call it; ``abort`` on failure) stops the render processes.
    """

    def __init__(
        self,
        columns: Sequence[Column],
        context: RenderContext,
        *,
        chunk_rows: int,
        processes: int,
        max_rows: int,
        expected_rows: int | None = None,
        scratch_dir: Path | None = None,
        direct_tables: bool = True,
    ) -> None:
        if chunk_rows < 1 or processes < 1:
            raise ValueError("chunk_rows and processes must be at least 1")
        self.columns = list(columns)
        if not self.columns:
            raise ValueError("a report needs at least one column")
        self.context = context
        self.chunk_rows = chunk_rows
        self.processes = processes
        self.max_rows = max_rows
        self.expected_rows = expected_rows
        self.direct_tables = direct_tables
        # Every row kept, in order; a row handed to a render process gives way to ``()`` here
        # (its chunk holds it until laid out), so the worker does not keep 50,000 rows.
        self.rows: list[tuple[Any, ...]] = []
        self._layout: Layout | None = None
        self._size = 0  # rows of the next chunk
        # Rows a page holds (page-fitted chunks: ``_fit``), from the layout's estimate at first,
        # then the fewest rows seen on a full page of a chunk laid out.
        self._page_rows = 1
        self._fit = False
        # The chunks: (first row, rows), page one's first (submitted in ``finish``), the others
        # as they fill up. ``_next`` is the first row not yet in a chunk.
        self._chunks: list[tuple[int, int]] = []
        self._next = 0
        self._work_dir = Path(tempfile.mkdtemp(prefix="pdf-render-", dir=scratch_dir))
        # The render processes die with this process, even when it is killed (SIGKILL), and
        # record themselves in the work directory for the sweep (app/common/children.py).
        self._executor = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=guard_child,
            initargs=(os.getpid(), str(self._work_dir)),
        )
        self._waiting: list[asyncio.Future[Any]] = []
        # For the job's progress: each chunk in the render processes (its rows by their cost),
        # and the chunks done (their pages tell how many rows a page holds).
        self._in_flight: dict[int, float] = {}
        self._rows_done, self._weight_done = 0, 0.0
        self._pages_done = 0
        self._own: set[str] = set()  # chunks the direct writer wrote (the join copies bytes)
        self._joining = False  # the join runs (its progress file is JOIN_PROGRESS)
        self._written = False
        # One render process starts now and loads WeasyPrint and fonts during the fetch; the
        # others only once a chunk after page one's is due (``_widen``): a PDF of one chunk
        # (most of them) does not pay for processes it cannot use.
        self._wide = processes == 1
        if not self._wide:
            limit_processes(self._executor, 1)
        self._starting = [str(self._work_dir / "start-0.progress")]
        self._executor.submit(warm_up, self._starting[0]).add_done_callback(ignore_failure)

    def _widen(self) -> None:
        """Lets the render processes grow to ``processes``, warming the new ones up while the
        rows still arrive."""
        if self._wide:
            return
        self._wide = True
        limit_processes(self._executor, self.processes)
        for n in range(1, self.processes):
            path = str(self._work_dir / f"start-{n}.progress")
            self._executor.submit(warm_up, path).add_done_callback(ignore_failure)

    def _chunk_path(self, index: int) -> str:
        return str(self._work_dir / f"chunk-{index:05d}.pdf")

    def _plan(self) -> None:
        rows = len(self.rows)
        expected = min(self.max_rows, max(rows, self.expected_rows or self.max_rows))
        self._layout = plan_layout(self.columns, self.rows, self.context)
        self._page_rows = max(1, int(self._layout.rows_per_page))
        # Chunks of whole pages when a chunk holds two pages or more: each chunk starts on a
        # new page, so a chunk that ends mid-page leaves a short page behind it.
        self._fit = self.chunk_rows >= 2 * self._page_rows
        balanced = balanced_chunk_size(expected, self.chunk_rows, self.processes)
        self._size = self._fitted_size() if self._fit else balanced
        # Page one's chunk (settled in ``finish``; WeasyPrint's, laid out last): with the direct
        # writer one page of rows (its last page short as a larger one's), so little waits.
        first = min(self._size, self._page_rows) if self.direct_tables and self._fit else self._size
        self._chunks = [(0, first)]
        self._next = first

    def _fitted_size(self) -> int:
        return max(1, self.chunk_rows // self._page_rows) * self._page_rows

    def _learn(self, full_page: int) -> None:
        """A chunk laid out says how many rows a full page held: later chunks fit it."""
        if self._fit and 0 < full_page < self._page_rows:
            self._page_rows = full_page
            self._size = self._fitted_size()

    def _add_chunk(self, rows: int) -> int:
        self._chunks.append((self._next, rows))
        self._next += rows
        return len(self._chunks) - 1

    def _submit(
        self, index: int, *, first: bool, context: RenderContext, last: bool = False
    ) -> None:
        assert self._layout is not None
        start, count = self._chunks[index]
        part = self.rows[start : start + count]
        self.rows[start : start + count] = [()] * count  # the chunk holds them now
        chunk = RenderChunk(
            self.columns,
            part,
            context,
            self._layout,
            first,
            start,
            len(self.rows),
            self._chunk_path(index),
            index=index,
            expected_pages=self._expected_pages(len(part)),
            totals=context.totals.cells(self.columns) if last and context.totals else None,
            direct=self.direct_tables,
        )
        if index:
            self._widen()
        try:
            work = self._executor.submit(render_chunk, chunk)
        except BrokenProcessPool as exc:  # a render process died while the rows streamed
            raise process_died() from exc
        mirror = watch(work)
        rows = len(chunk.rows)
        self._in_flight[index] = weight = rows * (WEASYPRINT_COST if self._slow(index) else 1)

        def laid_out(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                pages, full_page, own = done.result()
                if own:
                    self._own.add(chunk.out_path)
                self._in_flight.pop(index, None)
                self._rows_done += rows
                self._weight_done += weight
                self._pages_done += pages
                if not first:
                    self._learn(full_page)

        mirror.add_done_callback(laid_out)
        self._waiting.append(mirror)

    def _expected_pages(self, rows: int) -> int:
        """Pages a chunk of ``rows`` rows will have: as the chunks done so far had, else as the
        layout estimates."""
        assert self._layout is not None
        if self._rows_done:
            per_page = self._rows_done / max(1, self._pages_done)
        else:
            per_page = self._layout.rows_per_page
        return max(1, math.ceil(rows / per_page))

    @property
    def rows_laid_out(self) -> int:
        """How far the PDF has got, in rows: the render processes' start, the rows of the
        chunks done and of the chunks being laid out their share done (step by step and page
        by page, from their progress files), then the join. All of ``rows`` only once the file
        is written."""
        rows = len(self.rows)
        if self._written or not rows:
            return rows
        now = time.time()
        started = sum(read_share(path, now) for path in self._starting) / len(self._starting)
        laid_out = self._weight_done + sum(
            weight * read_share(progress_path(self._chunk_path(index)), now)
            for index, weight in self._in_flight.items()
        )
        slow = self._chunks[0][1] if self._chunks and self._slow(0) else 0
        weight = rows + (WEASYPRINT_COST - 1) * slow
        rendered = STARTUP_SHARE * started + (1 - STARTUP_SHARE) * min(1.0, laid_out / weight)
        joined = read_share(self._work_dir / JOIN_PROGRESS, now) if self._joining else 0.0
        share = (1 - JOIN_SHARE) * rendered + JOIN_SHARE * joined
        return min(rows, int(share * rows))

    def _slow(self, index: int) -> bool:
        """Whether WeasyPrint lays the chunk out among direct-written ones (page one's)."""
        return self.direct_tables and index == 0

    def _raise_early_failure(self) -> None:
        """A chunk that failed fails the PDF now rather than after the whole fetch."""
        for future in self._waiting:
            if future.done() and not future.cancelled() and (error := future.exception()):
                if isinstance(error, BrokenProcessPool):
                    raise process_died() from error
                raise error

    def add(self, batch: Sequence[tuple[Any, ...]]) -> None:
        self._raise_early_failure()
        room = self.max_rows - len(self.rows)
        if room <= 0:
            return
        self.rows.extend(batch[:room])
        if self._layout is None:
            if len(self.rows) < min(LAYOUT_SAMPLE, self.max_rows):
                return
            self._plan()
        # Complete chunks after the first go now; with a totals row, a chunk only once a row
        # after it came (the last one ends with the totals, known at the end).
        held = 1 if self.context.totals is not None else 0
        while self._next + self._size + held <= len(self.rows):
            self._submit(self._add_chunk(self._size), first=False, context=self.context)

    async def finish(self, path: Path, context: RenderContext) -> int:
        """Renders what is left with the final ``context`` (summary, total rows), writes
        ``path`` and returns the page count."""
        part = path.with_name(f".{path.name}.part")
        try:
            if self._layout is None:
                self._plan()
            total = len(self.rows)
            if total <= self._chunks[0][1]:  # page one's chunk holds every row
                self._chunks[0] = (0, total)
            first_rest = len(self._chunks)
            while self._next < total:
                self._add_chunk(min(self._size, total - self._next))
            chunks = len(self._chunks)
            # Page one's chunk first: the slowest of what is left (WeasyPrint's).
            self._submit(0, first=True, context=context, last=chunks == 1)
            for index in range(first_rest, chunks):
                self._submit(index, first=False, context=context, last=index == chunks - 1)
            await asyncio.gather(*self._waiting)
            paths = [self._chunk_path(i) for i in range(chunks)]
            assert self._layout is not None
            self._joining = True
            join = self._executor.submit(
                merge_and_stamp,
                paths,
                str(part),
                str(path),
                context,
                self._layout,
                str(self._work_dir / JOIN_PROGRESS),
                self._own,
                self.direct_tables,
            )
            self._waiting = [watch(join)]
            pages: int = await self._waiting[0]
            self._written = True
            await asyncio.to_thread(self._executor.shutdown, wait=True)  # idle workers exit
            return pages
        except BaseException as exc:
            self.abort()
            part.unlink(missing_ok=True)
            if isinstance(exc, BrokenProcessPool):
                raise process_died() from exc
            raise

    def abort(self) -> None:
        """Stops the render processes now rather than after their chunk (failed, cancelled)."""
        for future in self._waiting:
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: the failure that matters is raised elsewhere
            future.cancel()
        kill_workers(self._executor)

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        shutil.rmtree(self._work_dir, ignore_errors=True)


def balanced_chunk_size(rows: int, chunk_rows: int, processes: int) -> int:
    """Rows per chunk: at most ``chunk_rows`` (it bounds each process's memory), and evened out
    so the last round of chunks keeps every process busy (5,000 rows, 1,000 per chunk, 2
    processes: 6 chunks of 834 rather than 5 of 1,000 with one process idle at the end)."""
    count = max(1, math.ceil(rows / chunk_rows))
    if count > 1 and count % processes:
        count += processes - count % processes
    return max(1, math.ceil(rows / count))
