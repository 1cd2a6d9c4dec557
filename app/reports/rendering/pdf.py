"""PDF through WeasyPrint from an HTML template (``templates/report.html`` + ``report.css``).

Page one: title, generated-at, timezone, requested-by, the parameters, a box of summary figures
and, when the report has more rows than the PDF holds, a notice saying so. Then the detail table,
its header repeated on every page, and "Page X of Y" in every footer.

Why it is built this way (spec §8): WeasyPrint lays out a styled table at ~50-80 rows/s and keeps
~0.23 MB per row in memory, so

- the detail rows are rendered in chunks of ``chunk_rows`` rows, each chunk a separate document
  rendered in a worker process (``ProcessPoolExecutor``, "spawn" context, ``processes`` workers),
  which bounds the memory of each process and uses several cores; with ``StreamingPdf`` every
  complete chunk after the first goes to the processes while later rows are still being
  fetched, so laying out overlaps the database work (page one, which shows the summary, last);
- the chunk files are joined with pypdf, and "Page X of Y" is stamped afterwards: a second, tiny
  WeasyPrint document of N blank pages with the same page box and only the page-number margin
  box is rendered and overlaid page by page (same font and position as the rest of the footer);
- the CSS is lean (fixed table layout, separated borders, class selectors only) and cell text is
  cut at ``CELL_MAX_CHARS`` characters, since one long text block lays out in quadratic time;
- the caller's event loop only awaits futures: nothing heavy runs in its process. Cancelling the
  awaiting task kills the worker processes at once.

Each chunk after the first starts on a new page, so a page before a chunk boundary may be short.
All cell text is HTML-escaped. The spawned workers import this module, so a program that renders
PDFs must guard its entry point with ``if __name__ == "__main__":`` (as any multiprocessing user).
"""

from __future__ import annotations

import asyncio
import html
import math
import multiprocessing
import re
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from app.reports.rendering.base import Column, ColumnType, RenderContext, RenderError

CELL_MAX_CHARS = 500
_LAYOUT_SAMPLE = 1000  # rows that column widths are estimated from
LANDSCAPE_MIN_COLUMNS = 7  # wider tables are printed on landscape A4
_TEMPLATES = Path(__file__).parent / "templates"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NUMERIC = frozenset({ColumnType.INTEGER, ColumnType.NUMBER, ColumnType.PERCENT})


# -- public entry point ------------------------------------------------------------------


async def render_pdf(
    path: Path,
    columns: Sequence[Column],
    rows: list[tuple[Any, ...]],
    context: RenderContext,
    *,
    chunk_rows: int,
    processes: int,
) -> int:
    """Renders ``rows`` (already capped by the caller) to ``path``; returns the page count.

    ``context.total_rows`` larger than ``len(rows)`` puts a truncation notice on page one.
    ``chunk_rows`` is the most rows one render process lays out at a time; ``processes`` how
    many render processes run at once.
    """
    pdf = StreamingPdf(
        columns, context, chunk_rows=chunk_rows, processes=processes, max_rows=len(rows)
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
        self.rows: list[tuple[Any, ...]] = []
        self._layout: Layout | None = None
        self._size = 0
        self._submitted = 1  # chunks [1, _submitted) are with the render processes
        self._work_dir = Path(tempfile.mkdtemp(prefix="pdf-render-"))
        self._executor = ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn")
        )
        self._waiting: list[asyncio.Future[Any]] = []

    def _chunk_path(self, index: int) -> str:
        return str(self._work_dir / f"chunk-{index:05d}.pdf")

    def _plan(self) -> None:
        rows = len(self.rows)
        expected = min(self.max_rows, max(rows, self.expected_rows or self.max_rows))
        self._layout = plan_layout(self.columns, self.rows, self.context)
        self._size = balanced_chunk_size(expected, self.chunk_rows, self.processes)

    def _submit(self, index: int, *, first: bool, context: RenderContext) -> None:
        assert self._layout is not None
        size = self._size
        chunk = _Chunk(
            self.columns,
            self.rows[index * size : (index + 1) * size],
            context,
            self._layout,
            first,
            index * size,
            len(self.rows),
            self._chunk_path(index),
        )
        try:
            work = self._executor.submit(_render_chunk, chunk)
        except BrokenProcessPool as exc:  # a render process died while the rows streamed
            raise _died() from exc
        self._waiting.append(_watch(work))

    def _raise_early_failure(self) -> None:
        """A chunk that failed fails the PDF now rather than after the whole fetch."""
        for future in self._waiting:
            if future.done() and not future.cancelled() and (error := future.exception()):
                if isinstance(error, BrokenProcessPool):
                    raise _died() from error
                raise error

    def add(self, batch: Sequence[tuple[Any, ...]]) -> None:
        self._raise_early_failure()
        room = self.max_rows - len(self.rows)
        if room <= 0:
            return
        self.rows.extend(batch[:room])
        if self._layout is None:
            if len(self.rows) < min(_LAYOUT_SAMPLE, self.max_rows):
                return
            self._plan()
        # Complete chunks after the first go now (``shown_rows`` only matters on page one).
        while (self._submitted + 1) * self._size <= len(self.rows):
            self._submit(self._submitted, first=False, context=self.context)
            self._submitted += 1

    async def finish(self, path: Path, context: RenderContext) -> int:
        """Renders what is left with the final ``context`` (summary, total rows), writes
        ``path`` and returns the page count."""
        part = path.with_name(f".{path.name}.part")
        try:
            if self._layout is None:
                self._plan()
            chunks = max(1, math.ceil(len(self.rows) / self._size))
            for index in range(self._submitted, chunks):
                self._submit(index, first=False, context=context)
            self._submit(0, first=True, context=context)
            await asyncio.gather(*self._waiting)
            paths = [self._chunk_path(i) for i in range(chunks)]
            assert self._layout is not None
            self._waiting = [
                _watch(
                    self._executor.submit(
                        _merge_and_stamp, paths, str(part), str(path), context, self._layout
                    )
                )
            ]
            pages: int = await self._waiting[0]
            await asyncio.to_thread(self._executor.shutdown, wait=True)  # idle workers exit
            return pages
        except BaseException as exc:
            self.abort()
            part.unlink(missing_ok=True)
            if isinstance(exc, BrokenProcessPool):
                raise _died() from exc
            raise

    def abort(self) -> None:
        """Stops the render processes now rather than after their chunk (failed, cancelled)."""
        for future in self._waiting:
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: the failure that matters is raised elsewhere
            future.cancel()
        _kill_workers(self._executor)

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        shutil.rmtree(self._work_dir, ignore_errors=True)


def _died() -> RenderError:
    return RenderError("a PDF render process died (out of memory?); the PDF was not produced")


def _watch(work: Future[Any]) -> asyncio.Future[Any]:
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


def balanced_chunk_size(rows: int, chunk_rows: int, processes: int) -> int:
    """Rows per chunk: at most ``chunk_rows`` (it bounds each process's memory), and evened out
    so the last round of chunks keeps every process busy (5,000 rows, 1,000 per chunk, 2
    processes: 6 chunks of 834 rather than 5 of 1,000 with one process idle at the end)."""
    count = max(1, math.ceil(rows / chunk_rows))
    if count > 1 and count % processes:
        count += processes - count % processes
    return max(1, math.ceil(rows / count))


def _kill_workers(executor: ProcessPoolExecutor) -> None:
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


# -- layout --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    landscape: bool
    widths: list[float]  # percent of the table width, one per column
    font_size_pt: float


_PAGE_WIDTH_MM = {False: 210.0 - 22.0, True: 297.0 - 22.0}  # A4 less the side margins
_CELL_PADDING_MM = 2.6
_PT_TO_MM = 25.4 / 72
# Values of these types should never wrap; strings may (down to their longest label word).
_UNBREAKABLE_FLOOR = {
    ColumnType.BOOLEAN: 3,
    ColumnType.DATE: 10,
    ColumnType.DATETIME: 16,
    ColumnType.INTEGER: 3,
    ColumnType.NUMBER: 4,
    ColumnType.PERCENT: 5,
}


def plan_layout(
    columns: Sequence[Column], rows: Sequence[Sequence[Any]], context: RenderContext
) -> Layout:
    """Page orientation, font size and column widths, from the labels, the types and a sample
    of the rows (computed once, so that every chunk's pages line up).

    Dates, times, numbers and short codes get the width they need so they never wrap; long text
    columns share what is left and wrap. Widths are estimated in em from per-glyph advances.
    """
    tz = context.tz
    sample = rows[:_LAYOUT_SAMPLE]
    natural: list[float] = []  # em each column would like
    minimum: list[float] = []  # em below which it should not go
    for c, column in enumerate(columns):
        label_word = max((_text_em(w) for w in column.label.split()), default=2.0) * 1.12  # bold
        if column.width is not None:
            natural.append(column.width * 0.55)
            minimum.append(column.width * 0.55)
            continue
        ems = sorted(_text_em(format_cell(row[c], column.type, tz)) for row in sample)
        typical = ems[int(len(ems) * 0.9)] if ems else 4.0
        longest = ems[-1] if ems else 4.0
        if column.type is ColumnType.STRING:
            want = max(min(typical, 22.0), label_word, 2.0)
            # Codes and statuses (every value up to ~14 characters) stay on one line.
            floor = want if longest <= 7.5 else max(label_word, min(want, 6.5))
        else:
            want = max(longest, label_word, 2.0)
            floor = want
        natural.append(want)
        minimum.append(floor)

    landscape = len(columns) >= LANDSCAPE_MIN_COLUMNS
    font_pt = 8.0 if len(columns) < 8 else 7.5 if len(columns) < 12 else 7.0
    if not landscape and _table_mm(natural, font_pt) > _PAGE_WIDTH_MM[False]:
        landscape = True
    available = _PAGE_WIDTH_MM[landscape]
    while font_pt > 6.0 and _table_mm(minimum, font_pt) > available:
        font_pt -= 0.5

    em_mm = font_pt * _PT_TO_MM
    want_mm = [n * em_mm + _CELL_PADDING_MM for n in natural]
    min_mm = [m * em_mm + _CELL_PADDING_MM for m in minimum]
    if sum(want_mm) <= available:
        widths_mm = want_mm  # everything fits: the spare width is shared out proportionally
    elif sum(min_mm) >= available:
        widths_mm = min_mm  # too wide even at the minimum: scaled down below
    else:
        spare = available - sum(min_mm)
        stretch = [w - m for w, m in zip(want_mm, min_mm, strict=True)]
        total_stretch = sum(stretch) or 1.0
        widths_mm = [m + spare * s / total_stretch for m, s in zip(min_mm, stretch, strict=True)]
    total = sum(widths_mm)
    widths = [round(100 * w / total, 3) for w in widths_mm]
    return Layout(landscape=landscape, widths=widths, font_size_pt=font_pt)


def _table_mm(ems: Sequence[float], font_pt: float) -> float:
    return sum(n * font_pt * _PT_TO_MM + _CELL_PADDING_MM for n in ems)


# Approximate advances of DejaVu Sans Condensed, in em (close enough to size columns).
_GLYPH_EM: dict[str, float] = {
    **dict.fromkeys("0123456789", 0.573),
    **dict.fromkeys(" ", 0.286),
    **dict.fromkeys(".,:;'|!", 0.29),
    **dict.fromkeys("ijlft", 0.3),
    **dict.fromkeys("-()[]/r", 0.37),
    **dict.fromkeys("mwMW@%", 0.85),
    **dict.fromkeys("ABCDEFGHIJKLNOPQRSTUVXYZ", 0.64),
}


def _text_em(text: str) -> float:
    get = _GLYPH_EM.get
    return sum(get(ch, 0.53) for ch in text)


# -- cell text -----------------------------------------------------------------------------


def format_cell(value: Any, column_type: ColumnType, tz: tzinfo) -> str:
    """The text a reader sees in the PDF for one value (not yet HTML-escaped)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return ""
        if column_type is ColumnType.PERCENT:
            return f"{value:.1f}%"
        if isinstance(value, int):
            return f"{value:,}"
        return f"{value:,.1f}" if round(value, 1) == value else f"{value:,.2f}"
    text = _CONTROL_CHARS.sub(" ", str(value))
    if len(text) > CELL_MAX_CHARS:
        text = text[: CELL_MAX_CHARS - 1].rstrip() + "…"
    return text


def _esc(text: str) -> str:
    return html.escape(_CONTROL_CHARS.sub(" ", text), quote=True)


def _css_string(text: str) -> str:
    """``text`` as the inside of a double-quoted CSS string."""
    text = _CONTROL_CHARS.sub(" ", text).replace("\n", " ").replace("\t", " ")
    return text.replace("\\", "\\\\").replace('"', '\\"')


# -- HTML ------------------------------------------------------------------------------------


@cache
def _template(name: str) -> Template:
    return Template((_TEMPLATES / name).read_text(encoding="utf-8"))


def _generated_text(context: RenderContext) -> str:
    return context.generated_at_local.strftime("%Y-%m-%d %H:%M")


def _document(context: RenderContext, layout: Layout, body: str, *, first: bool) -> str:
    generated = _generated_text(context)
    css = _template("report.css").substitute(
        page_size="A4 landscape" if layout.landscape else "A4 portrait",
        running_title=_css_string(context.title),
        running_meta=_css_string(f"Generated {generated} ({context.timezone})"),
        footer_left=_css_string(f"{context.title} · {generated} ({context.timezone})"),
        first_page_rule=(
            "@page :first { @top-left { content: none } @top-right { content: none } }"
            if first
            else ""
        ),
        data_font_size=f"{layout.font_size_pt}pt",
    )
    return _template("report.html").substitute(
        title=_esc(context.title),
        author=_esc(context.requested_by or ""),
        css=css,
        body=body,
    )


def _cover(context: RenderContext, shown_rows: int) -> str:
    generated = _generated_text(context)
    total = context.total_rows if context.total_rows is not None else shown_rows
    meta = [
        f"Generated <b>{_esc(generated)}</b>",
        f"Timezone <b>{_esc(context.timezone)}</b> (all times)",
    ]
    if context.requested_by:
        meta.append(f"Requested by <b>{_esc(context.requested_by)}</b>")
    meta.append(f"<b>{total:,}</b> row{'s' if total != 1 else ''}")
    params = "".join(
        f"<tr><th>{_esc(label)}</th><td>{_esc(value)}</td></tr>"
        for label, value in context.parameters
    )
    params += f"<tr><th>Timezone</th><td>{_esc(context.timezone)}</td></tr>"
    if context.summary:
        figures = "".join(
            f'<div class="figure"><div class="v">{_esc(value)}</div>'
            f'<div class="l">{_esc(label)}</div></div>'
            for label, value in context.summary
        )
    else:
        figures = '<p class="empty-note">No summary figures.</p>'
    notice = ""
    if context.total_rows is not None and context.total_rows > shown_rows:
        notice = (
            '<div class="notice"><b>Truncated:</b> showing the first '
            f"{shown_rows:,} of {context.total_rows:,} rows. "
            "Download the CSV or Excel file for all rows.</div>"
        )
    return (
        '<div class="cover">'
        f'<div class="kicker">{_esc(context.report_type.replace("-", " "))} report</div>'
        f"<h1>{_esc(context.title)}</h1>"
        f'<div class="meta">{" &nbsp;·&nbsp; ".join(meta)}</div>'
        "</div>"
        '<table class="facts"><tbody><tr>'
        f'<td style="width:58%"><h2>Parameters</h2><table class="params"><tbody>{params}'
        "</tbody></table></td>"
        '<td class="gap"></td>'
        f'<td><h2>Summary</h2><div class="summary">{figures}</div></td>'
        "</tr></tbody></table>"
        f"{notice}"
    )


def _table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    layout: Layout,
    tz: tzinfo,
    row_offset: int,
) -> str:
    cols = "".join(f'<col style="width:{w}%">' for w in layout.widths)
    numeric = [c.type in _NUMERIC for c in columns]
    head = "".join(
        f'<th class="n">{_esc(c.label)}</th>' if numeric[i] else f"<th>{_esc(c.label)}</th>"
        for i, c in enumerate(columns)
    )
    types = [c.type for c in columns]
    parts = [
        f'<table class="data"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>'
    ]
    append = parts.append
    for r, row in enumerate(rows, start=row_offset):
        cells = []
        for c, value in enumerate(row):
            text = html.escape(format_cell(value, types[c], tz), quote=False)
            cells.append(f'<td class="n">{text}</td>' if numeric[c] else f"<td>{text}</td>")
        append('<tr class="z">' if r % 2 else "<tr>")
        append("".join(cells))
        append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def build_chunk_html(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    context: RenderContext,
    layout: Layout,
    *,
    first: bool,
    row_offset: int = 0,
    shown_rows: int | None = None,
) -> str:
    """The HTML of one chunk: page one's cover (first chunk only) and a table of ``rows``.

    ``shown_rows`` is how many rows the whole PDF holds (for page one; default ``len(rows)``).
    """
    body = ""
    if first:
        body += _cover(context, shown_rows=len(rows) if shown_rows is None else shown_rows)
        if not rows:
            body += '<p class="no-rows">No rows match these parameters.</p>'
    if rows:
        body += _table(columns, rows, layout, context.tz, row_offset)
    return _document(context, layout, body, first=first)


def _stamp_html(context: RenderContext, layout: Layout, pages: int) -> str:
    """N blank pages with the same page box, carrying only "Page X of Y" bottom right."""
    css = (
        f"@page {{ size: {'A4 landscape' if layout.landscape else 'A4 portrait'};"
        " margin: 15mm 11mm 15mm 11mm;"
        ' @bottom-right { content: "Page " counter(page) " of " counter(pages);'
        ' font-family: "DejaVu Sans", sans-serif; font-size: 7pt; color: #64748b;'
        " vertical-align: top; padding-top: 3mm; } }"
        " body { margin: 0; } div { height: 1px; break-after: page; }"
        " div:last-child { break-after: auto; }"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{css}</style></head>"
        f"<body>{'<div></div>' * pages}</body></html>"
    )


# -- work done in the render processes -------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    columns: list[Column]
    rows: list[tuple[Any, ...]]
    context: RenderContext
    layout: Layout
    first: bool
    row_offset: int
    shown_rows: int
    out_path: str


def _render_chunk(chunk: _Chunk) -> int:
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


def _merge_and_stamp(
    chunk_paths: list[str], part_path: str, out_path: str, context: RenderContext, layout: Layout
) -> int:
    """Joins the chunks, stamps "Page X of Y", writes ``part_path`` and renames it ``out_path``."""
    from io import BytesIO

    from pypdf import PdfReader, PdfWriter
    from weasyprint import HTML

    writer = PdfWriter()
    for chunk_path in chunk_paths:
        writer.append(chunk_path)
    pages = len(writer.pages)
    stamp = PdfReader(BytesIO(HTML(string=_stamp_html(context, layout, pages)).write_pdf()))
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
