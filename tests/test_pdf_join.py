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

from app.reports.rendering.base import RenderError
from app.reports.rendering.pdf.copying import ObjectCopier
from app.reports.rendering.pdf.direct.stamp import page_number_forms
from app.reports.rendering.pdf.layout import plan_layout
from app.reports.rendering.pdf.pdfwriter import PdfWriter
from app.reports.rendering.pdf.processes import RenderChunk, merge_and_stamp, render_chunk
from app.reports.rendering.pdf.rebasing import OwnFile
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


def _tree(pdf: pikepdf.Pdf) -> list[Any]:
    """The structure tree as plain values: each element's type, page, ID, headers (as IDs),
    kids (MCIDs or elements); each page's parent-tree entries (MCID -> its element's path)."""
    pages = {page.obj.objgen: n for n, page in enumerate(pdf.pages)}
    paths: dict[tuple[int, int], str] = {}

    def element(node: Any, path: str) -> Any:
        if isinstance(node, int):
            return node
        paths[node.objgen] = path
        page = pages.get(node.Pg.objgen) if "/Pg" in node else None
        attributes = node.get("/A")
        headers = [str(h) for h in attributes.get("/Headers", ())] if attributes else []
        kids = node.K if isinstance(node.get("/K"), pikepdf.Array) else [node.get("/K")]
        return (str(node.S), page, str(node.get("/ID", "")), headers,
                [element(k, f"{path}/{i}") for i, k in enumerate(kids) if k is not None])  # fmt: skip

    root = pdf.Root.StructTreeRoot
    tree = element(root.K[0], "0")
    nums = root.ParentTree.Nums
    marks = {int(nums[i]): nums[i + 1] for i in range(0, len(nums), 2)}
    parents = [
        [paths[e.objgen] if e is not None else None for e in marks[int(page.StructParents)]]
        for page in pdf.pages
    ]
    ids = root.IDTree.Names
    return [tree, parents, [(str(ids[i]), paths[ids[i + 1].objgen]) for i in range(0, len(ids), 2)]]


def test_direct_chunks_copied_as_bytes_join_as_read_through_pikepdf(tmp_path: Path) -> None:
    """The join copies a chunk the PDF's own writer wrote as bytes, its object numbers moved:
    the file is the one the object-by-object copy makes (pages, text, fonts, structure tree,
    parent tree and ID tree), reads without a syntax problem, and the bytes copied keep strings
    that look like references as they are."""
    rows = pdf_rows(300)
    context = make_context(format="pdf", total_rows=len(rows))
    layout = plan_layout(PDF_COLUMNS, rows, context)
    paths, own = [], []
    for index, part in enumerate((rows[:60], rows[60:180], rows[180:])):
        path = str(tmp_path / f"chunk-{index}.pdf")
        chunk = RenderChunk(
            PDF_COLUMNS, part, context, layout, index == 0, 60 * index, 300, path,
            index=index, direct=index > 0,
        )  # fmt: skip
        if render_chunk(chunk)[2]:
            own.append(path)
        paths.append(path)
    assert own == paths[1:]  # the detail chunks are the direct writer's
    joined = {}
    for label, copied in (("bytes", own), ("objects", [])):  # page numbers: direct, WeasyPrint
        out = joined[label] = tmp_path / f"joined-{label}.pdf"
        merge_and_stamp(
            paths, f"{out}.part", str(out), context, layout, own=copied, direct=label == "bytes"
        )
    texts = []
    with pikepdf.open(joined["bytes"]) as fast, pikepdf.open(joined["objects"]) as slow:
        assert fast.check_pdf_syntax() == [] and slow.check_pdf_syntax() == []
        assert len(fast.pages) == len(slow.pages) > 3
        assert _tree(fast) == _tree(slow)
        for a, b in zip(fast.pages, slow.pages, strict=True):
            assert int(a.StructParents) == int(b.StructParents)
            assert [f.BaseFont for f in a.Resources.Font.values()] == [
                f.BaseFont for f in b.Resources.Font.values()
            ]
            assert [c.read_bytes() for c in a.Contents] == [c.read_bytes() for c in b.Contents]
    for out in joined.values():
        texts.append(
            subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, check=True)
        )
    # "Page n of N" where WeasyPrint put it, to a tenth of a point.
    places = [_page_numbers(out) for out in joined.values()]
    assert len(places[0]) == len(places[1]) == 4 * len(PdfReader(joined["bytes"]).pages)
    for (word, *box), (same, *expected) in zip(*places, strict=True):
        assert word == same and box == pytest.approx(expected, abs=0.1)
    assert texts[0].stdout == texts[1].stdout and b"Learner 00299" in texts[0].stdout
    # The cells' elements went over as the direct writer wrote them, not serialised again.
    written = [OwnFile(out).bodies.values() for out in (joined["bytes"], joined["objects"])]
    assert [sum(b"/S/TD/P " in body for body in bodies) for bodies in written] == [
        240 * len(PDF_COLUMNS),
        0,
    ]


def _page_numbers(path: Path) -> list[tuple[Any, ...]]:
    """The words of "Page n of N" on every page with their boxes (pdftotext -bbox)."""
    html = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    word = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    found = []
    for page in html.split("<page ")[1:]:
        *_, page_word, n, of, total = re.findall(word, page)  # the page's last words
        found += [(w[4], *(float(v) for v in w[:4])) for w in (page_word, n, of, total)]
    assert found and found[0][0] == "Page"
    return found


def test_bytes_copied_keep_strings_and_move_references_and_keys(tmp_path: Path) -> None:
    source = PdfWriter(tmp_path / "own.pdf")
    catalog, pages, page, element, data = (source.reserve() for _ in range(5))
    odd = rb"[(12 0 R) (a\) 3 0 R) (\\) (/StructParents 9)]"
    source.write(element, b"<</S/TD/Pg %d 0 R/T%s/StructParent 4/K[%d 0 R]>>" % (page, odd, data))
    source.write_stream(data, b"/Filter/FlateDecode/Length1 7", zlib.compress(b"2 0 R"))
    source.write(
        page,
        b"<</Type/Page/Parent %d 0 R/MediaBox[0 0 9 9]/Resources<<>>/StructParents 2>>" % pages,
    )
    source.write(pages, b"<</Type/Pages/Count 1/Kids[%d 0 R]>>" % page)
    source.write(catalog, b"<</Type/Catalog/Pages %d 0 R/Element %d 0 R>>" % (pages, element))
    source.close(catalog, None, (b"0" * 16, b"0" * 16))
    own = OwnFile(tmp_path / "own.pdf")
    assert sorted(own.numbers) == [catalog, pages, page, element, data]

    out = PdfWriter(tmp_path / "copy.pdf")
    moved = {n: out.reserve() for n in own.numbers}
    own.copy(out, moved, own.numbers, key_offset=100)
    out.close(moved[catalog], None, (b"1" * 16, b"1" * 16))
    with pikepdf.open(tmp_path / "copy.pdf") as pdf:
        assert pdf.check_pdf_syntax() == []
        copied = pdf.Root.Element
        assert copied.objgen == (moved[element], 0) and copied.Pg == pdf.pages[0].obj
        assert [bytes(t) for t in copied.T] == [b"12 0 R", b"a) 3 0 R", b"\\", b"/StructParents 9"]
        assert int(copied.StructParent) == 104
        assert int(pdf.pages[0].StructParents) == 102
        assert copied.K[0].read_bytes() == b"2 0 R"  # stream data as it was
        assert int(copied.K[0].Length1) == 7
    with pytest.raises(RenderError, match="left out"):
        own.copy(PdfWriter(tmp_path / "x.pdf"), {element: 1}, [element])


def test_page_numbers_the_font_cannot_show_as_weasyprint_would_stay_weasyprints() -> None:
    rows = pdf_rows(5)
    context = make_context(format="pdf", total_rows=len(rows), locale="de")
    forms = page_number_forms(context, plan_layout(PDF_COLUMNS, rows, context))
    assert forms is not None and forms.text == "Seite {page} von {pages}"
    forms.text = "صفحة {page} من {pages}"  # right to left: WeasyPrint's bidi and shaping
    assert not forms.shows()
