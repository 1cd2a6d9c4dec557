"""Pure renderers: rows in, file out (CSV, JSON Lines, Excel, PDF). No database, no HTTP.

WeasyPrint is imported only inside the PDF render processes, so importing this package is cheap.
Which renderer a format uses is its ``FormatSpec.open_sink`` (``app/reports/formats.py``), the
one list of formats; nothing here dispatches on a format's name.
"""

from app.reports.rendering.base import (
    Column,
    ColumnType,
    Figure,
    LocalTimes,
    RenderContext,
    RenderError,
    RowSink,
    RowWriter,
    WriterSink,
)
from app.reports.rendering.csv import CsvRowWriter
from app.reports.rendering.jsonl import JsonLinesRowWriter, JsonLinesSink, JsonRows
from app.reports.rendering.pdf import PdfSink, StreamingPdf, render_pdf
from app.reports.rendering.rowindex import RowIndex
from app.reports.rendering.xlsx import XlsxRowWriter, XlsxSink

__all__ = [
    "Column",
    "ColumnType",
    "CsvRowWriter",
    "Figure",
    "JsonLinesRowWriter",
    "JsonLinesSink",
    "JsonRows",
    "LocalTimes",
    "PdfSink",
    "RenderContext",
    "RenderError",
    "RowIndex",
    "RowSink",
    "RowWriter",
    "StreamingPdf",
    "WriterSink",
    "XlsxRowWriter",
    "XlsxSink",
    "render_pdf",
]
