"""A PDF at the 50,000-row cap, checked at a smaller scale through the same code path: 3,000
rows streamed in fetch-sized batches into many page-sized chunks on two render processes, with a
totals row. Every page says "Page n of N" with the right N, each chunk fills whole pages (no
half-empty page at every chunk boundary), the structure tree holds every row once, in order,
and the totals row once, at the very end. The cap itself: 50,000 by default, and no higher."""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from pydantic import ValidationError
from pypdf import PdfReader

from app.config import Settings
from app.reports.formats import FORMATS
from app.reports.rendering import PdfSink, RenderContext
from app.reports.rendering.pdf import plan_layout
from app.reports.rendering.totals import SUM, TotalsRow
from tests.test_pdf_accessibility import _document, _elements
from tests.test_rendering import PDF_COLUMNS, make_context, pdf_rows

ROWS = 3000
CHUNK_ROWS = 100  # two pages of rows a chunk: some 30 chunks


def _context() -> RenderContext:
    totals = TotalsRow("Total", {"minutes": SUM}, {"minutes": sum(3 * i for i in range(ROWS))})
    return make_context(format="pdf", total_rows=ROWS, totals=totals)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """The PDF, its page count as the sink reported it, and the chunks it was laid out in."""
    path = tmp_path_factory.mktemp("scale") / "report.pdf"
    context = _context()
    rows = pdf_rows(ROWS)
    sink = PdfSink(path, PDF_COLUMNS, context, chunk_rows=CHUNK_ROWS, processes=2, max_rows=50_000)

    async def run() -> None:
        for start in range(0, ROWS, 2000):  # the worker's fetch batches
            await sink.add(rows[start : start + 2000])
        await sink.finish(context)

    asyncio.run(run())
    return path, sink.pages, len(sink.pdf._chunks)


def test_every_page_says_page_n_of_n_across_the_chunks(scaled: tuple[Path, int, int]) -> None:
    path, pages, chunks = scaled
    texts = [page.extract_text() for page in PdfReader(path).pages]
    assert chunks >= 25
    assert len(texts) == pages
    labels = [re.findall(r"Page (\d+) of (\d+)", text) for text in texts]
    assert labels == [[(str(n), str(pages))] for n in range(1, pages + 1)]
    found = [int(n) for n in re.findall(r"Learner (\d{5})", "\n".join(texts))]
    assert found == list(range(ROWS))  # every row once, in order


def test_chunks_fill_whole_pages(scaled: tuple[Path, int, int]) -> None:
    _path, pages, chunks = scaled
    per_page = plan_layout(PDF_COLUMNS, pdf_rows(1000), make_context()).rows_per_page
    # Chunks of CHUNK_ROWS rows that ignored the page would leave a short page behind each
    # (3 pages per 100 rows: 90 pages); chunks of whole pages print about as many pages as one
    # long table (page one's cover and the last page aside).
    assert pages <= math.ceil(ROWS / math.floor(per_page)) + 2 < 3 * chunks


def test_the_structure_tree_holds_every_row_and_the_totals_row_once_at_the_end(
    scaled: tuple[Path, int, int],
) -> None:
    path, pages, _ = scaled
    with pikepdf.open(path) as pdf:
        assert len(pdf.pages) == pages
        elements = list(_elements(_document(pdf)))
        data = [e for e in elements if e.S == "/Table" and any(k.S == "/THead" for k in e.K)]
        body_rows: list[Any] = [r for t in data for s in t.K if s.S == "/TBody" for r in s.K]
        assert len(body_rows) == ROWS + 1  # every row, then the totals row
        tree = pdf.Root.StructTreeRoot
        nums = tree.ParentTree.Nums
        assert int(tree.ParentTreeNextKey) == len(nums) // 2 == pages
    texts = [page.extract_text() for page in PdfReader(path).pages]
    totals = [n for n, text in enumerate(texts) if re.search(r"^Total\b", text, re.M)]
    assert totals == [pages - 1]
    last = texts[-1]
    assert last.index("Learner 02999") < last.index("Total")
    assert f"{sum(3 * i for i in range(ROWS)):,}" in last


def test_the_pdf_cap_is_50000_rows_by_default_and_no_setting_raises_it_further(
    settings: Settings,
) -> None:
    assert Settings.model_fields["pdf_max_rows"].default == 50_000
    assert FORMATS["pdf"].row_cap(settings) == settings.pdf_max_rows == 50_000
    assert Settings(pdf_max_rows=10_000).pdf_max_rows == 10_000
    with pytest.raises(ValidationError, match="pdf_max_rows"):
        Settings(pdf_max_rows=50_001)
