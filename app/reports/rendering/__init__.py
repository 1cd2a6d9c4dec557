"""Pure renderers: rows in, file out (CSV, Excel, PDF). No database, no HTTP.

WeasyPrint is imported only inside the PDF render processes, so importing this package is cheap.
The factories live here rather than in ``base`` so the shared vocabulary imports no renderer.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.reports.rendering.base import (
    Column,
    ColumnType,
    LocalTimes,
    RenderContext,
    RenderError,
    RowSink,
    RowWriter,
    WriterSink,
)
from app.reports.rendering.csv import CsvRowWriter
from app.reports.rendering.pdf import PdfSink, StreamingPdf, render_pdf
from app.reports.rendering.xlsx import XlsxRowWriter


def open_writer(
    fmt: str, path: Path, columns: Sequence[Column], context: RenderContext, **options: Any
) -> RowWriter:
    """A ``RowWriter`` for ``fmt`` ("csv" or "xlsx") writing to ``path``.

    Options: csv ``bom: bool = False``; xlsx ``rows_per_sheet: int = 1_048_575``.
    """
    if fmt == "csv":
        return CsvRowWriter(path, columns, context, **options)
    if fmt == "xlsx":
        return XlsxRowWriter(path, columns, context, **options)
    raise ValueError(f"no row writer for format {fmt!r} (csv and xlsx stream; pdf uses render_pdf)")


__all__ = [
    "Column",
    "ColumnType",
    "CsvRowWriter",
    "LocalTimes",
    "PdfSink",
    "RenderContext",
    "RenderError",
    "RowSink",
    "RowWriter",
    "StreamingPdf",
    "WriterSink",
    "XlsxRowWriter",
    "open_writer",
    "render_pdf",
]
