"""Pure renderers: rows in, file out (CSV, Excel, PDF). No database, no HTTP.

WeasyPrint is imported only inside the PDF render processes, so importing this package is cheap.
"""

from app.reports.rendering.base import (
    CONTENT_TYPES,
    FILE_EXTENSIONS,
    Column,
    ColumnType,
    LocalTimes,
    RenderContext,
    RenderError,
    RowWriter,
    open_writer,
)
from app.reports.rendering.pdf import StreamingPdf, render_pdf

__all__ = [
    "CONTENT_TYPES",
    "FILE_EXTENSIONS",
    "Column",
    "ColumnType",
    "LocalTimes",
    "RenderContext",
    "RenderError",
    "RowWriter",
    "StreamingPdf",
    "open_writer",
    "render_pdf",
]
