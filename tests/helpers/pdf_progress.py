"""A PDF rendered while its progress is followed, as the pipeline follows it: what the job's
percent was, sampled every 50 ms until the file is finished."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.reports.execution.lease import Progress
from app.reports.execution.pipeline import follow_layout
from app.reports.rendering import PdfSink
from tests.test_rendering import PDF_COLUMNS, make_context, pdf_rows


async def render_following(
    path: Path, rows: int, chunk_rows: int, *, direct_tables: bool = True
) -> tuple[PdfSink, Progress, list[float]]:
    """Renders `rows` rows in chunks of `chunk_rows` on one process; returns the sink, the
    progress once laid out and the percents seen meanwhile. `direct_tables=False`: every chunk
    laid out by WeasyPrint (its progress is followed step by step and page by page)."""
    sink = PdfSink(
        path,
        PDF_COLUMNS,
        make_context(format="pdf"),
        chunk_rows=chunk_rows,
        processes=1,
        max_rows=1000,
        direct_tables=direct_tables,
    )
    progress = Progress(percent=45.0)
    await sink.add(pdf_rows(rows))
    follow = asyncio.create_task(follow_layout(sink, progress, 45.0))
    seen: list[float] = []
    finishing = asyncio.create_task(sink.finish(make_context(format="pdf")))
    while not finishing.done():
        seen.append(progress.percent)
        await asyncio.sleep(0.05)
    await finishing
    await asyncio.sleep(0.3)
    follow.cancel()
    return sink, progress, seen
