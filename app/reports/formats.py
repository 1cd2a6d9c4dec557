"""The output formats (csv, xlsx, pdf, json): one ``FormatSpec`` each, the single description of a
format that the metadata API, the executor and the download read.

Adding a format is one spec here (with its ``RowSink`` in ``app/reports/rendering/``) plus its
code in the ``report-format`` lookup values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.i18n import N_
from app.lookups.catalog import LookupSeed
from app.reports.rendering import (
    Column,
    CsvRowWriter,
    JsonLinesRowWriter,
    JsonLinesSink,
    PdfSink,
    RenderContext,
    RowSink,
    WriterSink,
    XlsxRowWriter,
    XlsxSink,
)
from app.reports.rendering.present import TREE_COLUMN_KEYS
from app.storage import BytePipe


@dataclass(frozen=True, kw_only=True)
class SinkOptions:
    """What a sink may need besides the columns and the context (from settings and the job)."""

    csv_bom: bool = False  # the job's ``options.csvBom``
    # The CSV field delimiter and decimal separator (the job's, else its locale's).
    csv_delimiter: str = ","
    csv_decimal: str = "."
    pdf_chunk_rows: int = 500
    pdf_direct_tables: bool = (
        True  # detail-table chunks by the direct writer (``PDF_DIRECT_TABLES``)
    )
    render_processes: int = 1
    max_rows: int | None = None  # rows the file keeps at most (a truncating format's cap)
    # Where a format that ``streams_bytes`` writes its bytes instead of creating the file.
    output: BytePipe | None = None


SinkFactory = Callable[[Path, Sequence[Column], RenderContext, SinkOptions], Awaitable[RowSink]]


@dataclass(frozen=True, kw_only=True)
class FormatSpec:
    key: str  # the format code in the API and the ``report-format`` lookup
    label: str
    description: str
    extension: str  # without the dot
    content_type: str  # what the stored file and its download are served as
    truncates: bool  # True: rows past the limit are dropped (PDF); False: the job fails
    max_rows: Callable[[Settings], int]
    streams: bool  # True: the file is written as rows arrive; False: mostly rendered after
    open_sink: SinkFactory
    # True: the bytes are final as they are written (CSV), so they go to storage as the rows
    # arrive (``SinkOptions.output``); False: the library assembles the file when it is closed
    # (an Excel zip, a PDF), so it is written to a temporary file and uploaded then.
    streams_bytes: bool = False
    # True: the file is for people (PDF, Excel): labels for codes, machine-only columns left
    # out; False: for programs (CSV, JSON Lines): codes (labels when the job asks) and every
    # column.
    for_people: bool = True
    # The machine-only columns a file for people shows all the same (Excel: a department
    # tree's `level` and `parentCode`, beside its outline).
    kept_columns: frozenset[str] = frozenset()
    # True: text that gzip shrinks several times (CSV, JSON Lines), served compressed to a
    # client that accepts it; an Excel file is a zip already and a PDF's streams are deflated.
    compresses: bool = False

    def file_name(self, stem: str) -> str:
        return f"{stem}.{self.extension}"

    def row_limit(self, settings: Settings) -> int | None:
        """The row count above which a job fails (None: the format truncates instead)."""
        return None if self.truncates else self.max_rows(settings)

    def row_cap(self, settings: Settings) -> int | None:
        """The rows a truncating format keeps at most (None: it keeps every row)."""
        return self.max_rows(settings) if self.truncates else None


async def _csv_sink(
    path: Path, columns: Sequence[Column], context: RenderContext, options: SinkOptions
) -> RowSink:
    # Opening creates the file: done in a thread like every other file write.
    writer = await asyncio.to_thread(
        CsvRowWriter,
        path,
        columns,
        context,
        bom=options.csv_bom,
        output=options.output,
        delimiter=options.csv_delimiter,
        decimal=options.csv_decimal,
    )
    return WriterSink(writer)


async def _xlsx_sink(
    path: Path, columns: Sequence[Column], context: RenderContext, options: SinkOptions
) -> RowSink:
    return XlsxSink(await asyncio.to_thread(XlsxRowWriter, path, columns, context))


async def _json_sink(
    path: Path, columns: Sequence[Column], context: RenderContext, options: SinkOptions
) -> RowSink:
    return JsonLinesSink(await asyncio.to_thread(JsonLinesRowWriter, path, columns, context))


async def _pdf_sink(
    path: Path, columns: Sequence[Column], context: RenderContext, options: SinkOptions
) -> RowSink:
    if options.max_rows is None:
        raise ValueError("a PDF needs its row cap (SinkOptions.max_rows)")
    return PdfSink(
        path,
        columns,
        context,
        chunk_rows=options.pdf_chunk_rows,
        processes=options.render_processes,
        max_rows=options.max_rows,
        direct_tables=options.pdf_direct_tables,
    )


FORMATS: dict[str, FormatSpec] = {
    spec.key: spec
    for spec in (
        FormatSpec(
            key="csv",
            label=N_("CSV"),
            description=N_("Comma-separated values (RFC 4180)"),
            extension="csv",
            content_type="text/csv; charset=utf-8",
            truncates=False,
            max_rows=lambda settings: settings.csv_max_rows,
            streams=True,
            open_sink=_csv_sink,
            streams_bytes=True,
            compresses=True,
            for_people=False,
        ),
        FormatSpec(
            key="xlsx",
            label=N_("Excel"),
            description=N_("Excel workbook"),
            extension="xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            truncates=False,
            max_rows=lambda settings: settings.xlsx_max_rows,
            streams=True,
            open_sink=_xlsx_sink,
            kept_columns=TREE_COLUMN_KEYS,
        ),
        FormatSpec(
            key="pdf",
            label=N_("PDF"),
            description=N_("Printable PDF document"),
            extension="pdf",
            content_type="application/pdf",
            truncates=True,
            max_rows=lambda settings: settings.pdf_max_rows,
            streams=False,
            open_sink=_pdf_sink,
        ),
        FormatSpec(
            key="json",
            label="JSON Lines",
            description="JSON Lines: a header line (columns, parameters, summary, definitions), "
            "then one JSON object per row",
            extension="jsonl",
            content_type="application/jsonl",
            truncates=False,
            max_rows=lambda settings: settings.json_max_rows,
            streams=True,
            open_sink=_json_sink,
            for_people=False,
            compresses=True,
        ),
    )
}


def format_lookup_values() -> list[LookupSeed]:
    """The ``report-format`` lookup codes: one per spec, with the content type it is served as."""
    return [
        (spec.key, spec.label, spec.description, {"contentType": spec.content_type})
        for spec in FORMATS.values()
    ]


def get_format(key: str) -> FormatSpec:
    """The spec of format ``key`` (a ``KeyError`` for an unknown one: jobs are validated
    against the report type's formats before they are stored)."""
    return FORMATS[key]


__all__ = ["FORMATS", "FormatSpec", "SinkFactory", "SinkOptions", "compresses", "get_format"]


def served_as() -> str:
    """The media type each format's file is served as (`text/csv; charset=utf-8` for csv, ...)."""
    return ", ".join(f"{spec.content_type} for {spec.key}" for spec in FORMATS.values())


def compresses(key: str) -> bool:
    """Whether a file of format ``key`` is served gzip-compressed to a client that accepts it."""
    spec = FORMATS.get(key)
    return spec is not None and spec.compresses


def _header(description: str, type_: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": type_}}


def file_response() -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entries of a report file streamed by the service: the 200 (one media type
    per format of the registry, app/reports/formats.py, a binary body, the attachment's file
    name, the validators, gzip for the text formats) and the 206 of a `Range` request."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {spec.content_type: binary for spec in FORMATS.values()}
    texts = ", ".join(spec.key for spec in FORMATS.values() if spec.compresses)
    common = {
        "Content-Disposition": _header(
            "`attachment` with the file name (ASCII and RFC 5987 UTF-8)"
        ),
        "Accept-Ranges": _header("`bytes`: a `Range` request is answered with those bytes"),
        "ETag": _header(
            "The stored file's sha256 in quotes (a strong validator for `If-Range`); the gzip "
            "answer's ends in `-gzip`"
        ),
        "Last-Modified": _header("When the file was made (`If-Range` takes it too)"),
    }
    return {
        200: {
            "description": (
                f"The file, served as its format's type: {served_as()}. With "
                f"`Accept-Encoding: gzip`, the text formats ({texts}) come gzip-compressed as "
                "they are read (`Content-Encoding: gzip`, no Content-Length); a `Range` request "
                "whose `If-Range` no longer matches the file gets the whole file"
            ),
            "content": content,
            "headers": {
                **common,
                "Content-Length": _header("The file's size (absent when compressed)", "integer"),
                "Content-Encoding": _header("`gzip` when the answer is compressed"),
                "Vary": _header(f"`Accept-Encoding` for the text formats ({texts})"),
            },
        },
        206: {
            "description": (
                "`Range: bytes=<first>-<last>`, `bytes=<first>-` or `bytes=-<suffix>` (one range; "
                "several are answered with the whole file): exactly those bytes of the file, "
                "never compressed. With `If-Range`, only while it names the file's ETag or "
                "Last-Modified"
            ),
            "content": content,
            "headers": {
                **common,
                "Content-Range": _header("`bytes <first>-<last>/<size>`"),
                "Content-Length": _header("The bytes in the range", "integer"),
            },
        },
    }
