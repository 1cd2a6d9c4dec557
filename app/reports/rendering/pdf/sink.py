"""``PdfSink``: the ``RowSink`` of a PDF job, a ``StreamingPdf`` written beside the job's file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.reports.rendering.base import Column, RenderContext
from app.reports.rendering.pdf.streaming import StreamingPdf


class PdfSink:
    """A ``RowSink`` writing a PDF to ``path``: rows beyond ``max_rows`` are dropped (the
    first page then says the PDF is truncated); chunks are laid out while the fetch runs."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[Column],
        context: RenderContext,
        *,
        chunk_rows: int,
        processes: int,
        max_rows: int,
        direct_tables: bool = True,
    ) -> None:
        self.path = path
        # The chunks are laid out beside the PDF: a job's temporary space is one directory.
        self.pdf = StreamingPdf(
            columns,
            context,
            chunk_rows=chunk_rows,
            processes=processes,
            max_rows=max_rows,
            scratch_dir=path.parent,
            direct_tables=direct_tables,
        )
        self.pages = 0

    @property
    def rows_written(self) -> int:
        return len(self.pdf.rows)

    @property
    def row_index(self) -> None:
        """A PDF's rows cannot be read back by offset."""
        return None

    @property
    def rows_laid_out(self) -> int:
        return self.pdf.rows_laid_out

    def expect_rows(self, total: int | None) -> None:
        if self.pdf.expected_rows is None:
            self.pdf.expected_rows = total

    async def add(self, batch: Sequence[tuple[Any, ...]]) -> None:
        self.pdf.add(batch)

    async def finish(self, context: RenderContext) -> None:
        try:
            self.pages = await self.pdf.finish(self.path, context)
        finally:
            self.pdf.close()

    def abort(self) -> None:
        self.pdf.abort()  # the render processes stop now, not after their chunk
        self.pdf.close()
