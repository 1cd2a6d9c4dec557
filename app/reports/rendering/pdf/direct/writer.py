"""A chunk of detail-table pages written straight to PDF: the rows laid out here (fonts,
wrapping, pages) rather than by WeasyPrint, the file written object by object (``PdfWriter``).
The join (``joining``) takes it as it takes a tagged WeasyPrint chunk."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.reports.rendering.pdf.copying import literal
from app.reports.rendering.pdf.direct.fonts import Font, fonts
from app.reports.rendering.pdf.direct.pages import (
    FONT_NAMES,
    Geometry,
    Row,
    glyphs_of,
    head_row,
    lay_out_row,
    media_box,
    page_stream,
    paginate,
)
from app.reports.rendering.pdf.direct.tags import Tags
from app.reports.rendering.pdf.document import NUMERIC, running_texts
from app.reports.rendering.pdf.layout import format_cell, wrap_points
from app.reports.rendering.pdf.pdfwriter import PdfWriter
from app.reports.rendering.pdf.progress import RenderProgress, progress_path
from app.reports.rendering.pdf.tagging import chunk_prefix
from app.reports.rendering.present import TreeName

if TYPE_CHECKING:
    from app.reports.rendering.pdf.processes import RenderChunk

# Shares of a direct chunk's work: its rows laid out, then its pages written.
LAID_OUT, WRITTEN = 0.55, 0.97


def direct_candidate(chunk: RenderChunk) -> bool:
    """Whether a chunk is detail-table pages only (not page one's, not a department tree's,
    whose rows name their ancestors in the page header)."""
    return not chunk.first and bool(chunk.rows) and not isinstance(chunk.rows[0][0], TreeName)


def write_direct(chunk: RenderChunk) -> tuple[int, int] | None:
    """Writes ``chunk`` (a ``direct_candidate``) to ``chunk.out_path``; returns its page count
    and the rows a full page of it holds, or None, writing nothing, when a text needs what only
    WeasyPrint does (right-to-left or complex scripts, a character the fonts lack)."""
    regular, bold, small = fonts()
    context, layout = chunk.context, chunk.layout
    tz, locale = context.tz, context.locale
    types = [c.type for c in chunk.columns]
    numeric = [t in NUMERIC for t in types]
    texts = [
        [wrap_points(format_cell(value, types[c], tz, locale)) for c, value in enumerate(row)]
        for row in chunk.rows
    ]
    totals = None
    numeric_totals = numeric
    if chunk.totals is not None:
        totals = [wrap_points(format_cell(v, shown, tz, locale)) for v, shown in chunk.totals]
        numeric_totals = [
            n or shown in NUMERIC for n, (_, shown) in zip(numeric, chunk.totals, strict=False)
        ]
    labels = [c.label for c in chunk.columns]
    furniture = running_texts(context)
    if not (
        all(regular.covers(t) for row in texts for t in row)
        and all(bold.covers(t) for t in [*labels, *(totals or ())])
        and all(small.covers(t) for t in furniture)
    ):
        return None
    progress = RenderProgress(progress_path(chunk.out_path), chunk.expected_pages)
    geometry = Geometry.of(layout)
    head = head_row(labels, bold, geometry)
    rows: list[Row] = []
    every = max(1, len(texts) // 10)
    for i, row_texts in enumerate(texts):
        zebra = bool((chunk.row_offset + i) % 2)
        rows.append(lay_out_row(row_texts, regular, geometry, zebra=zebra))
        if i % every == every - 1:
            progress.write(LAID_OUT * (i + 1) / len(texts), LAID_OUT * (i + 1 + every) / len(texts))
    if totals is not None:
        rows.append(lay_out_row(totals, bold, geometry, zebra=False, total=True))
    pages = paginate(rows, head, geometry)
    progress.write(LAID_OUT, LAID_OUT + (WRITTEN - LAID_OUT) / max(1, len(pages)))
    _write(chunk, rows, pages, head, numeric, numeric_totals, geometry, furniture, progress)
    progress.write(1.0)
    full_page = min((len(p) for p in pages[:-1]), default=0)
    return len(pages), full_page


def _write(
    chunk: RenderChunk,
    rows: Sequence[Row],
    pages: Sequence[Sequence[int]],
    head: Row,
    numeric: Sequence[bool],
    numeric_totals: Sequence[bool],
    geometry: Geometry,
    furniture: tuple[str, str, str],
    progress: RenderProgress,
) -> None:
    all_fonts = fonts()
    regular, bold, small = all_fonts
    writer = PdfWriter(chunk.out_path, "1.7")
    try:
        reserve = writer.reserve
        catalog, page_tree = reserve(), reserve()
        font_numbers = [reserve(), reserve(), reserve()]
        resources = b"<</Font<<%s>>>>" % b"".join(
            b"%s %d 0 R" % (tag, n) for tag, n in zip(FONT_NAMES, font_numbers, strict=True)
        )
        tags = Tags(reserve, writer.write, chunk_prefix(chunk.index))
        media = media_box(geometry)
        page_numbers: list[int] = []
        for done, indices in enumerate(pages):
            page, contents = reserve(), reserve()
            page_numbers.append(page)
            stream, head_cells, cells = page_stream(
                rows, indices, head, (numeric, numeric_totals), all_fonts, geometry, furniture
            )
            writer.write_stream(contents, b"/Filter/FlateDecode", zlib.compress(stream, 6))
            writer.write(
                page,
                b"<</Type/Page/Parent %d 0 R/MediaBox%s/Resources%s/Contents %d 0 R"
                b"/StructParents %d/Tabs/S>>" % (page_tree, media, resources, contents, done),
            )
            tags.page(page, head_cells, cells)
            share = LAID_OUT + (WRITTEN - LAID_OUT) * (done + 1) / len(pages)
            progress.write(share, share + (WRITTEN - LAID_OUT) / len(pages))
        body = [rows[i] for p in pages for i in p]
        used = (
            (regular, [r for r in body if not r.total]),
            (bold, [head, *(r for r in body if r.total)]),
        )
        for number, (font, its_rows) in zip(font_numbers, used, strict=False):
            _font(writer, number, font, glyphs_of(its_rows))
        _font(writer, font_numbers[2], small, _furniture_glyphs(small, furniture))
        root = tags.close()
        writer.write(
            page_tree,
            b"<</Type/Pages/Count %d/Kids[%s]>>"
            % (len(page_numbers), b" ".join(b"%d 0 R" % n for n in page_numbers)),
        )
        context = chunk.context
        writer.write(
            catalog,
            b"<</Type/Catalog/Pages %d 0 R/StructTreeRoot %d 0 R/Lang%s/MarkInfo<</Marked true>>"
            b"/ViewerPreferences<</DisplayDocTitle true>>>>"
            % (page_tree, root, literal(context.language.encode("ascii", "replace"))),
        )
        info = reserve()
        writer.write(
            info,
            b"<</Title%s/Creator(Report System)/Producer(Report System)>>" % _text(context.title),
        )
        digest = hashlib.md5(chunk.out_path.encode(), usedforsecurity=False).digest()
        writer.close(catalog, b"%d 0 R" % info, (digest, digest))
    except BaseException:
        writer.abort()
        raise


def _font(writer: PdfWriter, number: int, font: Font, glyphs: set[int]) -> None:
    font.objects(glyphs).write(number, writer.reserve, writer.write, writer.write_stream)


def _furniture_glyphs(font: Font, texts: Sequence[str]) -> set[int]:
    return {g for text in texts for word in text.split(" ") for g in font.piece(word).glyphs}


def _text(text: str) -> bytes:
    """A PDF text string: ASCII as it is, else UTF-16BE with its byte order mark."""
    if text.isascii():
        return literal(text.encode("ascii"))
    return b"<feff" + text.encode("utf-16-be").hex().encode("ascii") + b">"
