"""The work done in the render processes (spawned, so they import this module afresh) and the
parent's handles on it: watching a process future from asyncio and killing the processes."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from app.reports.rendering.base import Column, ColumnType, RenderContext, RenderError
from app.reports.rendering.pdf.document import build_chunk_html, stamp_html
from app.reports.rendering.pdf.layout import Layout
from app.reports.rendering.pdf.progress import TAGGED, RenderProgress, progress_path
from app.reports.rendering.pdf.tagging import Tagging

# Every chunk is tagged (PDF/UA-1: structure tree, /Lang, /MarkInfo, the title shown).
PDF_OPTIONS: dict[str, Any] = {"pdf_variant": "pdf/ua-1"}
# A render process's start: its modules imported, WeasyPrint imported (then its fonts load).
STARTING = (0.3, 0.7)


@dataclass(frozen=True)
class RenderChunk:
    columns: list[Column]
    rows: list[tuple[Any, ...]]
    context: RenderContext
    layout: Layout
    first: bool
    row_offset: int
    shown_rows: int
    out_path: str
    index: int = 0  # the chunk's place in the PDF (its header-cell IDs are prefixed with it)
    expected_pages: int = 1  # for the progress while its pages are laid out
    # The last chunk's totals row: each cell with the type it prints as.
    totals: list[tuple[Any, ColumnType]] | None = None
    # Detail-table pages written by the direct writer (``direct``) rather than WeasyPrint,
    # where it can (not page one's chunk, not a tree, every character plain and in the font).
    direct: bool = False


def render_chunk(chunk: RenderChunk) -> tuple[int, int, bool]:
    """Lays out and writes one chunk; returns its page count, the rows a full page of it holds
    (``rows_on_a_full_page``) and whether the direct writer wrote it (the join copies its
    objects as bytes)."""
    if chunk.direct:
        # fontTools: imported in the render processes only, as WeasyPrint is.
        from app.reports.rendering.pdf.direct.writer import direct_candidate, write_direct

        if direct_candidate(chunk) and (written := write_direct(chunk)) is not None:
            return (*written, True)
    # Imported here, in the render process only: WeasyPrint loads Pango and its fonts (slow,
    # heavy), and the API and the worker's event loop import this module without rendering.
    from weasyprint import HTML

    source = build_chunk_html(
        chunk.columns,
        chunk.rows,
        chunk.context,
        chunk.layout,
        first=chunk.first,
        row_offset=chunk.row_offset,
        shown_rows=chunk.shown_rows,
        totals=chunk.totals,
    )
    alternatives = [f"{label}: {value}" for label, value in chunk.context.summary]
    progress = RenderProgress(progress_path(chunk.out_path), chunk.expected_pages)
    tagging = Tagging(chunk.index, alternatives if chunk.first else ())

    def finisher(document: Any, pdf: Any) -> None:
        tagging(document, pdf)
        progress.write(TAGGED, 1.0)

    with progress.following():
        html = HTML(string=source)
        progress.styling(html)
        document = html.render(**PDF_OPTIONS)
        progress.painting(document)
        full_page = rows_on_a_full_page(document.pages)
        document.write_pdf(chunk.out_path, finisher=finisher, **PDF_OPTIONS)
    progress.write(1.0)
    return len(document.pages), full_page, False


def rows_on_a_full_page(pages: Sequence[Any]) -> int:
    """The fewest detail rows on a page of a chunk that is followed by another of its pages
    (0 when the chunk has one page): how many rows fill a page, for sizing later chunks to
    whole pages. Page one (the cover) is counted too, so a first chunk is not asked."""
    counts = [_body_rows(page) for page in pages[:-1]]
    return min(counts, default=0)


def _body_rows(page: Any) -> int:
    box = getattr(page, "_page_box", None)  # WeasyPrint's laid-out page (no public accessor)
    if box is None:
        return 0
    return sum(
        len(group.children)
        for group in box.descendants()
        if type(group).__name__ == "TableRowGroupBox" and not group.is_header
    )


def ignore_failure(done: Future[Any]) -> None:
    if not done.cancelled():
        done.exception()  # a warm-up that failed: the chunk's own failure is what is reported


def warm_up(progress_file: str) -> None:
    """Loads WeasyPrint and its fonts in a render process before its first chunk comes."""
    progress = RenderProgress(progress_file)
    progress.write(STARTING[0], STARTING[1])
    from weasyprint import HTML

    progress.write(STARTING[1], 1.0)
    HTML(string="<p>.</p>").render()
    from app.reports.rendering.pdf.direct.fonts import fonts

    fonts()  # the direct writer's (fontconfig and fontTools, a few tenths of a second)
    progress.write(1.0)


def merge_and_stamp(
    chunk_paths: list[str],
    part_path: str,
    out_path: str,
    context: RenderContext,
    layout: Layout,
    progress_file: str | None = None,
    own: Collection[str] = (),
    direct: bool = False,
) -> int:
    """Joins the tagged chunks, stamps "Page X of Y" on every page (an artifact), writes
    ``part_path`` and renames it ``out_path``; the share done goes to ``progress_file``.
    ``own``: the chunks the direct writer wrote; ``direct``: the page numbers written by it too
    (where its font shows them), else laid out by WeasyPrint."""
    from weasyprint import HTML

    from app.reports.rendering.pdf.direct.stamp import page_number_forms
    from app.reports.rendering.pdf.joining import join_tagged  # pikepdf: render processes only

    def stamp(first: int, pages: int, total: int) -> bytes:
        source = stamp_html(context, layout, pages, first=first, total=total)
        return bytes(HTML(string=source).write_pdf())

    progress = RenderProgress(progress_file) if progress_file else None
    report = progress.write if progress else None
    forms = page_number_forms(context, layout) if direct else None
    pages = join_tagged(chunk_paths, stamp, part_path, report, own, forms)
    Path(part_path).replace(out_path)
    return pages


RENDER_PROCESS_RESTARTS = Counter(
    "report_render_process_restarts_total",
    "PDF render processes that died (the next PDF starts new ones)",
)


def process_died() -> RenderError:
    RENDER_PROCESS_RESTARTS.inc()
    return RenderError("a PDF render process died (out of memory?); the PDF was not produced")


def watch(work: Future[Any]) -> asyncio.Future[Any]:
    """An asyncio future following ``work``. Unlike ``asyncio.wrap_future``, cancelling it does
    not cancel ``work``: a cancelled-but-queued item breaks ProcessPoolExecutor's clean-up after
    its processes are killed (Python 3.11 raises InvalidStateError in its management thread)."""
    loop = asyncio.get_running_loop()
    mirror: asyncio.Future[Any] = loop.create_future()

    def settle() -> None:
        if mirror.done():
            return
        if work.cancelled():
            mirror.cancel()
        elif (error := work.exception()) is not None:
            mirror.set_exception(error)
        else:
            mirror.set_result(work.result())

    def on_done(_: Future[Any]) -> None:
        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    work.add_done_callback(on_done)
    return mirror


def kill_workers(executor: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public "kill" before Python 3.14, hence the private attribute.
    kill_workers = getattr(executor, "kill_workers", None)
    if kill_workers is not None:  # pragma: no cover - Python 3.14+
        kill_workers()
        return
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=2)


def limit_processes(executor: ProcessPoolExecutor, count: int) -> None:
    """How many processes ``executor`` may start: it starts one on a submit that finds none
    idle, up to this number (spawned processes, CPython's ``_adjust_process_count``)."""
    executor._max_workers = count  # type: ignore[attr-defined]  # no public setter
