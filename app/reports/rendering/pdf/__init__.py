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
- every chunk is a tagged PDF (PDF/UA-1: structure tree, ``/Lang``, ``/MarkInfo``, the title
  shown, fonts embedded; ``tagging`` completes what WeasyPrint leaves), and the chunks are joined
  into one structure tree, one chunk at a time, written to the file as it goes (``joining``:
  memory of one chunk, whatever the PDF's length); "Page X of Y" is stamped afterwards: a
  second, tiny WeasyPrint document of N blank pages with the same page box and only the
  page-number margin box is rendered and drawn over each page as an artifact (same font and
  position as the rest of the footer), as the running header and footer are artifacts too;
- each render process reports how far its chunk is, step by step and page by page
  (``progress``), so the job's progress moves while the chunks are laid out;
- the CSS is lean (fixed table layout, separated borders, class selectors only) and cell text is
  cut at ``CELL_MAX_CHARS`` characters, since one long text block lays out in quadratic time;
- the caller's event loop only awaits futures: nothing heavy runs in its process. Cancelling the
  awaiting task kills the worker processes at once.

Each chunk after the first starts on a new page, so chunks are sized to whole pages (``chunk_rows``
rounded down to the rows a page holds, learnt from the chunks laid out) when ``chunk_rows`` holds
two pages or more; a page before a chunk boundary is then short only when rows wrap more than in
the chunks before it. Small chunks lay out faster per row (WeasyPrint's cost per row grows with
the pages of a document) and keep each render process smaller; the rows handed to a render
process leave the worker's memory.
All cell text is HTML-escaped. The spawned workers import this module, so a program that renders
PDFs must guard its entry point with ``if __name__ == "__main__":`` (as any multiprocessing user).

Every chunk but page one's is detail-table pages only: the direct table writer (``direct``)
lays those out and writes their PDF itself, the same pages and tags at ~30x WeasyPrint's rows
per CPU second, and hands a chunk to WeasyPrint when it cannot show its text exactly.

Modules: ``layout`` (orientation, column widths, cell text), ``document`` (the HTML of a chunk
and of the page-number stamp), ``processes`` (what runs in the render processes: laying out a
chunk, joining and stamping), ``tagging`` and ``joining`` (the structure tree; ``copying`` and
``pdfwriter`` write the joined file object by object), ``progress``
(how far the render processes are), ``streaming`` (``StreamingPdf``, ``render_pdf``), ``sink``
(``PdfSink``).
"""

from app.reports.rendering.pdf.document import build_chunk_html
from app.reports.rendering.pdf.layout import (
    CELL_MAX_CHARS,
    LANDSCAPE_MIN_COLUMNS,
    Layout,
    format_cell,
    plan_layout,
)
from app.reports.rendering.pdf.sink import PdfSink
from app.reports.rendering.pdf.streaming import StreamingPdf, balanced_chunk_size, render_pdf

__all__ = [
    "CELL_MAX_CHARS",
    "LANDSCAPE_MIN_COLUMNS",
    "Layout",
    "PdfSink",
    "StreamingPdf",
    "balanced_chunk_size",
    "build_chunk_html",
    "format_cell",
    "plan_layout",
    "render_pdf",
]
