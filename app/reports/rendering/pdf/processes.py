"""The work done in the render processes (spawned, so they import this module afresh) and the
parent's handles on it: watching a process future from asyncio and killing the processes."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from app.reports.rendering.base import Column, RenderContext, RenderError
from app.reports.rendering.pdf.document import build_chunk_html, stamp_html
from app.reports.rendering.pdf.layout import Layout


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


def render_chunk(chunk: RenderChunk) -> int:
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
    )
    document = HTML(string=source).render()
    document.write_pdf(chunk.out_path)
    return len(document.pages)


def merge_and_stamp(
    chunk_paths: list[str], part_path: str, out_path: str, context: RenderContext, layout: Layout
) -> int:
    """Joins the chunks, stamps "Page X of Y", writes ``part_path`` and renames it ``out_path``."""
    # In the render process only, as in render_chunk (pypdf alone costs a worker ~25 MB).
    from pypdf import PdfReader, PdfWriter
    from weasyprint import HTML

    writer = PdfWriter()
    for chunk_path in chunk_paths:
        writer.append(chunk_path)
    pages = len(writer.pages)
    stamp = PdfReader(BytesIO(HTML(string=stamp_html(context, layout, pages)).write_pdf()))
    if len(stamp.pages) != pages:
        raise RenderError(f"page-number stamp has {len(stamp.pages)} pages, expected {pages}")
    for page, stamp_page in zip(writer.pages, stamp.pages, strict=True):
        page.merge_page(stamp_page)
        page.compress_content_streams()  # merging leaves the page's content uncompressed
    writer.add_metadata(
        {
            "/Title": context.title,
            "/Author": context.requested_by or "",
            "/Subject": context.report_type,
            "/Creator": "Report System",
        }
    )
    with open(part_path, "wb") as fh:
        writer.write(fh)
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
