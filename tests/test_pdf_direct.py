"""The direct table writer (rendering/pdf/direct/): a detail chunk written without WeasyPrint
reads as WeasyPrint's chunk of the same rows does (the same lines, wrapped at the same places,
on the same pages), is tagged as the join expects (TH with scope and chunk-prefixed IDs, TD
naming its column's TH, every MCID in the parent tree), falls back to WeasyPrint for text it
cannot show exactly, and a PDF joined from both kinds of chunk holds every row once, in order,
with its totals row once at the end and "Page n of N" on every page."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

import pikepdf
import pytest

from app.reports.rendering import Column, ColumnType, RenderContext, render_pdf
from app.reports.rendering.pdf.direct.fonts import fonts
from app.reports.rendering.pdf.direct.wrapping import line_text, wrap
from app.reports.rendering.pdf.layout import format_cell, plan_layout, wrap_points
from app.reports.rendering.pdf.processes import RenderChunk, render_chunk
from app.reports.rendering.pdf.tagging import chunk_prefix
from app.reports.rendering.present import TreeName
from app.reports.rendering.totals import MEAN, SUM, TotalsRow
from tests.test_rendering import PDF_COLUMNS, make_context, pdf_rows

T = ColumnType
WRAPPING_COLUMNS = [
    Column("learner", "Learner name", T.STRING),
    Column("email", "E-mail address", T.STRING),
    Column("course", "Course title", T.STRING),
    Column("score", "Average score", T.NUMBER),
    Column("minutes", "Minutes", T.INTEGER),
    Column("overdue", "Overdue", T.BOOLEAN),
]
TITLES = (
    "Data protection basics for the whole organisation including subcontractors and staff",
    "Anti-bribery and anti-corruption: policies/procedures in practice",
    "Supercalifragilisticexpialidociousandevenlongerwordthatdoesnotfitanywhereatall",
    "Leading remote teams — über Grenzen hinweg, Ärger vermeiden (office staff)",
)


def _wrapping_rows(n: int) -> list[tuple[Any, ...]]:
    return [
        (
            f"Müller-Lüdenscheidt {i}" if i % 3 else f"Jean-Baptiste O'Neil {i}",
            f"very.long.address.number{i}@subdomain.example-company.com" if i % 5 == 0 else f"a{i}@ex.com",
            TITLES[i % len(TITLES)],
            1234.5 + i * 1.25,
            12345 * i,
            i % 2 == 0,
        )
        for i in range(n)
    ]  # fmt: skip


def _chunk(
    folder: Path, name: str, columns: list[Column], rows: list[tuple[Any, ...]], **kw: Any
) -> tuple[str, tuple[int, int]]:
    context: RenderContext = kw.pop("context", make_context(format="pdf", total_rows=len(rows)))
    layout = plan_layout(columns, rows, context)
    path = str(folder / name)
    chunk = RenderChunk(columns, rows, context, layout, False, 1, len(rows), path, index=3, **kw)
    pages, full_page, _own = render_chunk(chunk)
    return path, (pages, full_page)


def _producer(path: str) -> str:
    with pikepdf.open(path) as pdf:
        return str(pdf.docinfo.get("/Producer", ""))


def _text(path: str, *pages: int) -> list[str]:
    """pdftotext's lines of the file (or of ``pages``), white space runs made one space."""
    span = ["-f", str(pages[0]), "-l", str(pages[-1])] if pages else []
    out = subprocess.run(
        ["pdftotext", "-layout", *span, path, "-"], check=True, capture_output=True, text=True
    ).stdout
    return [" ".join(line.split()) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize(("locale", "columns"), [("en", PDF_COLUMNS), ("de", WRAPPING_COLUMNS)])
def test_a_direct_chunk_reads_as_weasyprints_does(
    tmp_path: Path, locale: str, columns: list[Column]
) -> None:
    rows = pdf_rows(120) if columns is PDF_COLUMNS else _wrapping_rows(90)
    context = make_context(format="pdf", total_rows=len(rows), locale=locale)
    direct, laid_out = _chunk(tmp_path, "d.pdf", columns, rows, direct=True, context=context)
    weasy, expected = _chunk(tmp_path, "w.pdf", columns, rows, context=context)
    assert _producer(direct) == "Report System" and "WeasyPrint" in _producer(weasy)
    assert laid_out == expected  # pages, and the rows a full page holds (the chunk planner's)
    assert _text(direct) == _text(weasy)


def test_the_cells_text_is_extracted_as_written(tmp_path: Path) -> None:
    rows = pdf_rows(30)
    path, (pages, _) = _chunk(tmp_path, "d.pdf", PDF_COLUMNS, rows, direct=True)
    assert pages == 1
    lines = _text(path)
    context = make_context(format="pdf")
    for row in rows:
        cells = [format_cell(v, c.type, context.tz) for v, c in zip(row, PDF_COLUMNS, strict=False)]
        assert " ".join(c for c in cells if c) in lines


def test_emails_wrap_after_the_at_sign_and_long_words_break_anywhere() -> None:
    regular = fonts()[0]
    room = regular.width("verylongname@") * 1.02
    email = wrap(wrap_points("verylongname@example.com"), regular, room)
    assert [line_text(line) for line in email] == ["verylongname@", "example.com"]
    word = "x" * 80
    lines = [line_text(line) for line in wrap(f"a {word} b", regular, room)]
    assert lines[0] == "a" and "".join(lines[1:]).replace(" ", "") == word + "b"
    assert all(regular.width(text) <= room for text in lines)
    # A word also wraps after a hyphen before a letter (not before a digit).
    narrow = regular.width("bribery") * 1.05
    assert [line_text(x) for x in wrap("Anti-bribery C-123", regular, narrow)] == [
        "Anti-",
        "bribery",
        "C-123",
    ]


def test_a_character_the_font_lacks_or_right_to_left_text_goes_to_weasyprint(
    tmp_path: Path,
) -> None:
    for name, text in (("cjk", "日本語 ✓"), ("rtl", "שלום עולם"), ("mark", "e\u0301")):
        rows = pdf_rows(20)
        rows[7] = (text, *rows[7][1:])
        path, (_pages, _) = _chunk(tmp_path, f"{name}.pdf", PDF_COLUMNS, rows, direct=True)
        assert "WeasyPrint" in _producer(path), name
    tree = [(TreeName("  Sales", ("Company",)), *row[1:]) for row in pdf_rows(5)]
    path, _ = _chunk(tmp_path, "tree.pdf", PDF_COLUMNS, tree, direct=True)
    assert "WeasyPrint" in _producer(path)


def test_a_direct_chunks_structure_tree(tmp_path: Path) -> None:
    rows = pdf_rows(100)
    path, (pages, full_page) = _chunk(tmp_path, "d.pdf", PDF_COLUMNS, rows, direct=True)
    assert pages >= 2 and full_page > 0
    with pikepdf.open(path) as pdf:
        assert pdf.check_pdf_syntax() == []
        root = pdf.Root.StructTreeRoot
        (document,) = list(root.K)
        ids = root.IDTree.Names
        by_id = {str(ids[i]): ids[i + 1] for i in range(0, len(ids), 2)}
        assert list(by_id) == sorted(by_id)
        assert all(key.startswith(chunk_prefix(3)) for key in by_id)
        nums = root.ParentTree.Nums
        marks = {int(nums[i]): nums[i + 1] for i in range(0, len(nums), 2)}
        tables = list(document.K)
        assert len(tables) == len(pdf.pages) == pages
        body_rows = 0
        for page, table in zip(pdf.pages, tables, strict=True):
            assert table.S == "/Table" and table.Pg.objgen == page.obj.objgen
            head, body = list(table.K)
            (header_row,) = list(head.K)
            ths = list(header_row.K)
            assert [th.S for th in ths] == ["/TH"] * len(PDF_COLUMNS)
            assert all(th.A.Scope == "/Column" and by_id[str(th.ID)] == th for th in ths)
            page_marks = marks[int(page.obj.StructParents)]
            for tr in body.K:
                body_rows += 1
                for column, td in enumerate(tr.K):
                    assert td.S == "/TD" and [str(h) for h in td.A.Headers] == [str(ths[column].ID)]
                    for mcid in td.K:  # the element holds its marked content's MCID
                        assert page_marks[int(mcid)] == td
        assert body_rows == len(rows)


def test_a_pdf_joined_from_weasyprint_and_direct_chunks(tmp_path: Path) -> None:
    rows = pdf_rows(500)
    totals = TotalsRow(
        "Total",
        {"minutes": SUM, "score": MEAN},
        {"minutes": sum(r[8] for r in rows), "score": 49.5},
    )
    context = make_context(format="pdf", total_rows=len(rows), totals=totals)
    paths = {}
    for direct in (True, False):
        path = paths[direct] = tmp_path / f"report-{direct}.pdf"
        asyncio.run(
            render_pdf(
                path, PDF_COLUMNS, rows, context, chunk_rows=100, processes=2, direct_tables=direct
            )
        )
    with pikepdf.open(paths[True]) as pdf:
        total = len(pdf.pages)
        assert pdf.check_pdf_syntax() == []
        fonts_used = {str(f.BaseFont) for p in pdf.pages[1:] for f in p.Resources.Font.values()}
        assert any(name.endswith("+DejaVuSansCondensed") for name in fonts_used)
        document = pdf.Root.StructTreeRoot.K[0]
        body = [tr for table in document.K if table.S == "/Table" for s in table.K
                if s.S == "/TBody" for tr in s.K]  # fmt: skip
        assert len(body) == len(rows) + 1  # every row once and the totals row
    text = _text(str(paths[True]))
    # WeasyPrint alone lays out the same rows (page one's chunk is longer then: its pages break
    # elsewhere).
    assert _rows(_text(str(paths[False]))) == _rows(text)
    learners = [int(n) for n in re.findall(r"^Learner (\d{5}) ", "\n".join(text), re.M)]
    assert learners == list(range(len(rows)))  # every row once, in order
    (total_line,) = [i for i, line in enumerate(text) if line.startswith("Total ")]
    assert total_line > max(i for i, line in enumerate(text) if line.startswith("Learner 00499"))
    for page in (1, 2, total):
        assert f"Page {page} of {total}" in " ".join(_text(str(paths[True]), page))


def _rows(lines: list[str]) -> list[str]:
    return [line for line in lines if re.match(r"(Learner \d{5}|Total) ", line)]
