"""The PDF join writes as it goes: every object copied keeps its value exactly (strings that
look like references, names with delimiters, reals, cycles, stream data as encoded; only the
keys into the parent tree move past the chunks before), the file reads in pikepdf and pypdf
with no syntax problem, and the join's memory does not grow with the number of chunks (it holds
one chunk at a time, not the joined document)."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from pypdf import PdfReader

from app.reports.rendering.pdf.copying import ObjectCopier
from app.reports.rendering.pdf.layout import plan_layout
from app.reports.rendering.pdf.pdfwriter import PdfWriter
from app.reports.rendering.pdf.processes import RenderChunk, render_chunk
from tests.test_rendering import PDF_COLUMNS, make_context, pdf_rows

ROOT = Path(__file__).resolve().parents[1]
TRICKY = [
    b"12 0 R",  # a string that reads like a reference stays a string
    b"(nested) \\ back\\slash (",
    b"line\rbreak\nand\ttab",
    bytes(range(256)),
    b"",
]


def _source(path: Path) -> None:
    with pikepdf.new() as pdf:
        a = pdf.make_indirect(pikepdf.Dictionary(Name=pikepdf.Name("/A B#(x)")))
        b = pdf.make_indirect(pikepdf.Dictionary(Back=a, Values=pikepdf.Array([1, -2, None])))
        a.Next = b  # a cycle
        a.Strings = pikepdf.Array([pikepdf.String(s) for s in TRICKY])
        a.Reals = pikepdf.Array([Decimal("841.889764"), Decimal("-0.5"), Decimal("100"), 0.25])
        a.Flags = pikepdf.Array([True, False])
        a.StructParent, b.StructParents = 3, 0  # keys into the parent tree
        data = zlib.compress(b"BT /F1 12 Tf (12 0 R) Tj ET")
        a.Content = pdf.make_stream(data, Filter=pikepdf.Name.FlateDecode)
        pdf.Root.Source = a
        pdf.save(path)


def test_copied_objects_keep_their_values_exactly(tmp_path: Path) -> None:
    _source(tmp_path / "source.pdf")
    out = tmp_path / "copy.pdf"
    writer = PdfWriter(out)
    catalog, pages, page = writer.reserve(), writer.reserve(), writer.reserve()
    with pikepdf.open(tmp_path / "source.pdf") as source:
        copier = ObjectCopier(writer, key_offset=10)  # the chunks before had 10 keys
        copied = copier.ref(source.Root.Source)
        copier.drain()
        raw = source.Root.Source.Content.read_raw_bytes()
    writer.write(pages, b"<</Type/Pages/Count 1/Kids[%d 0 R]>>" % page)
    writer.write(page, b"<</Type/Page/Parent %d 0 R/MediaBox[0 0 10 10]/Resources<<>>>>" % pages)
    writer.write(catalog, b"<</Type/Catalog/Pages %d 0 R/Copied %d 0 R>>" % (pages, copied))
    writer.close(catalog, None, (b"0" * 16, b"1" * 16))

    with pikepdf.open(out) as pdf:
        assert pdf.check_pdf_syntax() == []
        a = pdf.Root.Copied
        assert a.Name == pikepdf.Name("/A B#(x)")
        assert [bytes(s) for s in a.Strings] == TRICKY
        assert list(a.Reals) == [Decimal("841.889764"), Decimal("-0.5"), 100, Decimal("0.25")]
        assert list(a.Flags) == [True, False] and list(a.Next.Values) == [1, -2, None]
        assert a.Next.Back.objgen == a.objgen  # the cycle, under the new numbers
        assert (int(a.StructParent), int(a.Next.StructParents)) == (13, 10)
        assert a.Content.read_raw_bytes() == raw  # copied as encoded, its filter kept
        assert a.Content.read_bytes() == b"BT /F1 12 Tf (12 0 R) Tj ET"
    trailer: Any = PdfReader(out).trailer
    assert trailer["/Root"]["/Copied"]["/Name"] == "/A B#(x)"


@pytest.fixture(scope="module")
def chunks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Page one's chunk and one 200-row detail chunk, tagged, as the render processes write
    them; the context and layout pickled beside them for the join's process."""
    folder = tmp_path_factory.mktemp("join")
    rows = pdf_rows(400)
    context = make_context(format="pdf", total_rows=len(rows))
    layout = plan_layout(PDF_COLUMNS, rows, context)
    paths = []
    for index, part in enumerate((rows[:200], rows[200:])):
        path = str(folder / f"chunk-{index:05d}.pdf")
        render_chunk(
            RenderChunk(PDF_COLUMNS, part, context, layout, index == 0, 200 * index, 400, path)
        )
        paths.append(path)
    (folder / "meta.pickle").write_bytes(pickle.dumps((context, layout)))
    return folder, paths


JOIN = """
import json, pickle, resource, sys
from pathlib import Path
from weasyprint import HTML
from app.reports.rendering.pdf.processes import merge_and_stamp
folder, first, detail, copies = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
context, layout = pickle.loads((Path(folder) / "meta.pickle").read_bytes())
HTML(string="<p>.</p>").render()  # WeasyPrint loaded, as in a render process
out = str(Path(folder) / f"joined-{copies}.pdf")
pages = merge_and_stamp([first] + [detail] * copies, out + ".part", out, context, layout)
print(json.dumps({"pages": pages, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _join(folder: Path, paths: list[str], copies: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", JOIN, str(folder), *paths, str(copies)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_join_holds_one_chunk_not_the_document(chunks: tuple[Path, list[str]]) -> None:
    """60 more chunks of 200 rows (12,000 rows): a join holding the document grew by ~28 KB a
    row (~330 MB here); this one by what its index and the page-number stamp need."""
    folder, paths = chunks
    few, many = _join(folder, paths, 4), _join(folder, paths, 64)
    detail_pages = (many["pages"] - few["pages"]) // 60
    assert detail_pages >= 4 and few["pages"] == len(PdfReader(paths[0]).pages) + 4 * detail_pages
    assert many["peak_mb"] - few["peak_mb"] < 40, (few, many)
    joined = folder / "joined-64.pdf"
    with pikepdf.open(joined) as pdf:
        assert pdf.check_pdf_syntax() == []
        assert len(pdf.pages) == many["pages"]
        nums = pdf.Root.StructTreeRoot.ParentTree.Nums
        assert [int(nums[i]) for i in range(0, len(nums), 2)] == list(range(many["pages"]))
    # The page numbers are laid out STAMP_PAGES (200) at a time: right across the batches.
    reader, total = PdfReader(joined), many["pages"]
    for n in (1, 200, 201, total):
        assert re.findall(r"Page \d+ of \d+", reader.pages[n - 1].extract_text()) == [
            f"Page {n} of {total}"
        ]
