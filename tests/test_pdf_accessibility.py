"""PDFs are tagged (PDF/UA-1) across their render chunks: one structure tree, the language,
the title shown, every header cell a TH with its scope, the summary figures a list with text
alternatives, every piece of content tagged or an artifact (the page furniture), fonts
embedded. Checked with pikepdf on the file as it is written."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pikepdf
import pytest

from app.reports.rendering import RenderContext, render_pdf
from tests.test_rendering import PDF_COLUMNS, make_context, pdf_rows

ROWS = 130  # three chunks of 50 rows on two render processes


def _context(**changes: Any) -> RenderContext:
    return make_context(
        format="pdf",
        total_rows=ROWS,
        definitions=[("Progress", "Share of the course's lessons completed, 0-100 %.")],
        **changes,
    )


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pikepdf.Pdf]:
    path = tmp_path_factory.mktemp("pdfua") / "report.pdf"
    asyncio.run(
        render_pdf(path, PDF_COLUMNS, pdf_rows(ROWS), _context(), chunk_rows=50, processes=2)
    )
    with pikepdf.open(path) as pdf:
        yield pdf


def _elements(element: Any) -> Iterator[pikepdf.Dictionary]:
    """The structure elements under ``element``, depth first, in reading order."""
    kids = element.get("/K")
    for kid in kids if isinstance(kids, pikepdf.Array) else [kids]:
        if isinstance(kid, pikepdf.Dictionary) and kid.get("/Type") == "/StructElem":
            yield kid
            yield from _elements(kid)


def _document(pdf: pikepdf.Pdf) -> Any:
    root = pdf.Root.StructTreeRoot
    (document,) = list(root.K)
    assert document.S == "/Document"
    return document


def test_one_structure_tree_with_the_language_and_the_title_shown(tagged: pikepdf.Pdf) -> None:
    root = tagged.Root
    assert root.Lang == "en"
    assert bool(root.MarkInfo.Marked) and bool(root.ViewerPreferences.DisplayDocTitle)
    assert str(tagged.docinfo.Title) == "Learner progress"
    with tagged.open_metadata() as xmp:
        assert xmp["dc:title"] == "Learner progress"
        assert xmp["pdfuaid:part"] == "1"
    elements = list(_elements(_document(tagged)))
    kinds = Counter(str(e.S) for e in elements)
    assert kinds["/H1"] == 1 and kinds["/H2"] == 3  # title; Parameters, Summary, Definitions
    # Text sits in its element (a heading, a cell) as marked content, not in a Span of its own.
    headings = [e for e in elements if e.S in ("/H1", "/H2")]
    assert all(any(isinstance(k, int) for k in h.K) for h in headings)
    assert kinds["/Span"] == 0
    # Every page's marked content maps back to the tree: one parent-tree entry per page.
    nums = root.StructTreeRoot.ParentTree.Nums
    keys = [int(nums[i]) for i in range(0, len(nums), 2)]
    assert sorted(int(p.obj.StructParents) for p in tagged.pages) == keys == list(range(len(keys)))
    assert int(root.StructTreeRoot.ParentTreeNextKey) == len(tagged.pages)
    pages = {p.obj.objgen for p in tagged.pages}
    assert all(e.Pg.objgen in pages for e in elements if "/Pg" in e)


def test_every_column_header_is_a_th_with_scope_and_every_cell_names_its_headers(
    tagged: pikepdf.Pdf,
) -> None:
    elements = list(_elements(_document(tagged)))
    tables = [e for e in elements if e.S == "/Table"]
    data = [t for t in tables if any(k.S == "/THead" for k in t.K)]
    # The detail table is tagged page by page, its header repeated on each: the three chunks
    # together hold every row once.
    assert len(data) == len(tagged.pages) >= 4
    ids = tagged.Root.StructTreeRoot.IDTree.Names
    by_id = {str(ids[i]): ids[i + 1] for i in range(0, len(ids), 2)}
    assert len(by_id) == len(ids) // 2  # unique across the chunks
    for table in data:
        (head,) = [k for k in table.K if k.S == "/THead"]
        (header_row,) = list(head.K)
        cells = list(header_row.K)
        assert [c.S for c in cells] == ["/TH"] * len(PDF_COLUMNS)
        assert all(c.A.Scope == "/Column" and str(c.ID) in by_id for c in cells)
    th = [e for e in elements if e.S == "/TH"]
    column = [e for e in th if e.A.Scope == "/Column"]
    row = [e for e in th if e.A.Scope == "/Row"]
    assert len(column) == len(PDF_COLUMNS) * len(data)
    assert len(row) == 2 + 1 + 1  # two parameters, the timezone, one definition
    for cell in (e for e in elements if e.S == "/TD"):
        headers = cell.A.get("/Headers")
        if headers is not None:
            assert all(by_id[str(h)].S == "/TH" for h in headers)
    rows = sum(1 for t in data for s in t.K if s.S == "/TBody" for _ in s.K)
    assert rows == ROWS


def test_the_summary_figures_are_a_list_with_text_alternatives(tagged: pikepdf.Pdf) -> None:
    elements = list(_elements(_document(tagged)))
    (summary,) = [e for e in elements if e.S == "/L"]
    items = [k for k in summary.K if k.S == "/LI"]
    assert [str(i.Alt) for i in items] == ["Enrollments: 3", "Average score: 71.4"]


def test_all_content_is_tagged_or_an_artifact_and_furniture_is_an_artifact(
    tagged: pikepdf.Pdf,
) -> None:
    nums = tagged.Root.StructTreeRoot.ParentTree.Nums
    parents = {int(nums[i]): nums[i + 1] for i in range(0, len(nums), 2)}
    seen: Counter[str] = Counter()
    for page in tagged.pages:
        marks = parents[int(page.obj.StructParents)]
        stack: list[tuple[str, int | None]] = []
        for instruction in pikepdf.parse_content_stream(page):
            op, operands = str(instruction.operator), instruction.operands
            if op in ("BDC", "BMC"):
                properties = operands[1] if op == "BDC" else None
                mcid = (
                    int(properties.MCID)
                    if isinstance(properties, pikepdf.Dictionary) and "/MCID" in properties
                    else None
                )
                if mcid is not None:
                    assert isinstance(marks[mcid], pikepdf.Dictionary)  # its element
                stack.append((str(operands[0]), mcid))
            elif op == "EMC":
                stack.pop()
            elif op in ("Tj", "TJ", "'", '"', "Do"):
                assert stack, f"unmarked {op} on a page"
                seen["artifact" if stack[-1][0] == "/Artifact" else "tagged"] += 1
                if op == "Do":
                    assert stack[-1][0] == "/Artifact"  # the "Page X of Y" stamp
        assert not stack
    pages = len(tagged.pages)
    # The footer on every page, the running header from page two, the page numbers.
    assert seen["artifact"] >= pages + 2 * (pages - 1) + pages
    assert seen["tagged"] > ROWS * len(PDF_COLUMNS) / 2


def test_every_font_is_embedded(tagged: pikepdf.Pdf) -> None:
    fonts = 0
    for page in tagged.pages:
        for font in _fonts(page.obj.Resources):
            fonts += 1
            descriptor = (
                font.DescendantFonts[0].FontDescriptor
                if font.Subtype == "/Type0"
                else font.FontDescriptor
            )
            assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    assert fonts


def _fonts(resources: Any) -> Iterator[pikepdf.Dictionary]:
    yield from (resources.get("/Font") or {}).values()
    for xobject in (resources.get("/XObject") or {}).values():
        if xobject.get("/Subtype") == "/Form" and "/Resources" in xobject:
            yield from _fonts(xobject.Resources)


async def test_the_language_comes_from_the_render_context(tmp_path: Path) -> None:
    path = tmp_path / "de.pdf"
    await render_pdf(
        path, PDF_COLUMNS, pdf_rows(3), _context(locale="de"), chunk_rows=50, processes=1
    )
    with pikepdf.open(path) as pdf:
        assert pdf.Root.Lang == "de"
        assert pdf.Root.StructTreeRoot.K[0].S == "/Document"
