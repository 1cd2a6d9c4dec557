"""Renderers: CSV, Excel and PDF files from rows (no servers needed)."""

from __future__ import annotations

import asyncio
import csv
import math
import random
import re
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import psutil
import pytest
import xlsxwriter
from pypdf import PdfReader

from app.reports.formats import FORMATS
from app.reports.rendering import (
    Column,
    ColumnType,
    CsvRowWriter,
    Figure,
    LocalTimes,
    RenderContext,
    StreamingPdf,
    XlsxRowWriter,
    render_pdf,
)
from app.reports.rendering.pdf import balanced_chunk_size, build_chunk_html, plan_layout

T = ColumnType

COLUMNS = [
    Column("name", "Learner", T.STRING),
    Column("minutes", "Time spent (min)", T.INTEGER),
    Column("score", "Score", T.NUMBER),
    Column("rate", "Completion rate", T.PERCENT),
    Column("overdue", "Overdue", T.BOOLEAN),
    Column("dueAt", "Due", T.DATE),
    Column("completedAt", "Completed at", T.DATETIME),
]

# 00:30 UTC on 2024-03-31 is before the Paris DST switch (01:00 UTC), 01:30 UTC after it.
BEFORE_DST = datetime(2024, 3, 31, 0, 30, tzinfo=UTC)
AFTER_DST = datetime(2024, 3, 31, 1, 30, tzinfo=UTC)


def make_context(**changes: Any) -> RenderContext:
    values: dict[str, Any] = {
        "title": "Learner progress",
        "report_type": "learner-progress",
        "format": "csv",
        "timezone": "Europe/Paris",
        "generated_at": datetime(2024, 6, 3, 7, 15, tzinfo=UTC),
        "parameters": [("Date range", "2024-01-01 – 2024-05-31"), ("Departments", "Sales")],
        "summary": [
            Figure("enrollments", "Enrollments", 3, T.INTEGER),
            Figure("averageScore", "Average score", 71.4, T.NUMBER),
        ],
        "total_rows": None,
        "row_cap": None,
        "requested_by": "Jane Manager",
    }
    values.update(changes)
    return RenderContext(**values)


ROWS: list[tuple[Any, ...]] = [
    ('Zoë "Z" O\'Brien, Jr.', 95, 88.5, 50.0, False, date(2024, 4, 1), BEFORE_DST),
    ("line one\nline two", 0, None, None, True, None, AFTER_DST),
    ("日本語 ✓", -5, -1.25, 100.0, None, date(2024, 12, 31), None),
]


def test_maps_cover_every_format() -> None:
    assert set(FORMATS) == {"csv", "xlsx", "pdf", "json"}
    assert all(spec.key == key and spec.content_type for key, spec in FORMATS.items())


# -- CSV ---------------------------------------------------------------------------------------


def write_csv(tmp_path: Path, rows: list[tuple[Any, ...]], **options: Any) -> Path:
    path = tmp_path / "report.csv"
    writer = CsvRowWriter(path, COLUMNS, make_context(), **options)
    writer.write_rows(rows[:1])
    writer.write_rows(rows[1:])
    writer.close()
    assert writer.rows_written == len(rows)
    return path


def test_csv_round_trip(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ROWS)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # no BOM by default
    assert raw.count(b"\r\n") == 4  # header + 3 rows; the embedded newline is not a line end
    with open(path, encoding="utf-8", newline="") as fh:
        got = list(csv.reader(fh))
    assert got == [
        [
            "Learner",
            "Time spent (min)",
            "Score",
            "Completion rate",
            "Overdue",
            "Due",
            "Completed at",
        ],
        [
            'Zoë "Z" O\'Brien, Jr.',
            "95",
            "88.5",
            "50.0",
            "false",
            "2024-04-01",
            "2024-03-31T01:30:00+01:00",
        ],
        ["line one\nline two", "0", "", "", "true", "", "2024-03-31T03:30:00+02:00"],
        ["日本語 ✓", "-5", "-1.25", "100.0", "", "2024-12-31", ""],
    ]
    # Minimal quoting: only the fields that need it are quoted.
    assert raw.splitlines()[1].startswith(b'"Zo\xc3\xab ""Z"" O\'Brien, Jr.",95,88.5,')


@pytest.mark.parametrize(
    "zone",
    ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
     "America/St_Johns", "Pacific/Chatham", "Africa/Casablanca", "Europe/Dublin"],
)  # fmt: skip
def test_local_times_agree_with_zoneinfo_across_offset_changes(zone: str) -> None:
    """The per-hour offset cache prints exactly what converting each value would print, also
    in the hours around DST changes (30-minute shifts and negative DST included)."""
    times, tz = LocalTimes(zone), ZoneInfo(zone)
    rng = random.Random(zone)
    start = datetime(1995, 1, 1)
    values = [start + timedelta(seconds=rng.randrange(40 * 365 * 86400)) for _ in range(3000)]
    # Every minute of two days around this zone's changes in 2024 (and the instants themselves).
    for day in (datetime(2024, 3, 9), datetime(2024, 10, 26), datetime(2024, 4, 6)):
        values += [day + timedelta(minutes=m, microseconds=999_999) for m in range(0, 2880, 7)]
    for value in values:
        exact = value.replace(tzinfo=UTC).astimezone(tz)
        assert times.iso(value) == exact.isoformat(timespec="seconds"), value
        assert times.naive(value) == exact.replace(tzinfo=None), value
        assert times.iso(value.replace(tzinfo=UTC)) == exact.isoformat(timespec="seconds")


def test_csv_in_utc_prints_naive_and_aware_datetimes_with_their_utc_offset(tmp_path: Path) -> None:
    path = tmp_path / "utc.csv"
    columns = [Column("at", "At", T.DATETIME), Column("n", "N", T.INTEGER)]
    writer = CsvRowWriter(path, columns, make_context(timezone="UTC"))
    paris = ZoneInfo("Europe/Paris")
    writer.write_rows(
        [
            (datetime(2024, 3, 31, 1, 30, 59, 999_999), 1),  # naive = UTC, seconds truncated
            (datetime(2024, 3, 31, 3, 30, tzinfo=paris), 2),  # aware elsewhere: shown in UTC
            (None, 3),
        ]
    )
    writer.close()
    with open(path, encoding="utf-8", newline="") as fh:
        assert list(csv.reader(fh))[1:] == [
            ["2024-03-31T01:30:59+00:00", "1"],
            ["2024-03-31T01:30:00+00:00", "2"],
            ["", "3"],
        ]


def test_csv_bom_option(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ROWS, bom=True)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfLearner,")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        assert next(csv.reader(fh))[0] == "Learner"


def test_csv_neutralises_formulas_but_not_numbers(tmp_path: Path) -> None:
    columns = [Column("text", "=HEADER", T.STRING), Column("n", "N", T.NUMBER)]
    path = tmp_path / "inject.csv"
    writer = CsvRowWriter(path, columns, make_context())
    payloads = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "safe", ""]
    writer.write_rows([(p, -5 if i % 2 else -1.5) for i, p in enumerate(payloads)])
    writer.close()
    with open(path, encoding="utf-8", newline="") as fh:
        got = list(csv.reader(fh))
    assert got[0] == ["'=HEADER", "N"]
    assert [r[0] for r in got[1:]] == [
        "'=1+2",
        "'+SUM(A1)",
        "'-2+3",
        "'@cmd",
        "'\tx",
        "'\rx",
        "safe",
        "",
    ]
    assert {r[1] for r in got[1:]} == {"-1.5", "-5"}  # negative numbers stay numbers


def test_csv_rejects_a_row_of_the_wrong_width(tmp_path: Path) -> None:
    writer = CsvRowWriter(tmp_path / "x.csv", COLUMNS, make_context())
    with pytest.raises(ValueError, match="expected 7"):
        writer.write_rows([("only one",)])
    writer.close()


# -- Excel -------------------------------------------------------------------------------------


def write_xlsx(
    tmp_path: Path, rows: list[tuple[Any, ...]], batch: int = 2, **options: Any
) -> tuple[Path, Any]:
    path = tmp_path / "report.xlsx"
    writer = XlsxRowWriter(path, COLUMNS, make_context(format="xlsx"), **options)
    for i in range(0, len(rows), batch):
        writer.write_rows(rows[i : i + batch])
    writer.close(
        summary=[
            Figure("enrollments", "Enrollments", 3, T.INTEGER),
            Figure("completionRate", "Completion rate", 57.1, T.PERCENT),
            Figure("averageScore", "Average score", None, T.NUMBER),
        ]
    )
    assert writer.rows_written == len(rows)
    return path, openpyxl.load_workbook(path)


def test_xlsx_typed_cells_header_and_parameters(tmp_path: Path) -> None:
    _, wb = write_xlsx(tmp_path, ROWS)
    assert wb.sheetnames == ["Data", "Parameters"]
    ws = wb["Data"]
    assert [c.value for c in ws[1]] == [c.label for c in COLUMNS]
    assert all(c.font.b for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:G4"
    first = [c.value for c in ws[2]]
    assert first[0] == 'Zoë "Z" O\'Brien, Jr.'
    assert first[1] == 95 and isinstance(first[1], int)
    assert first[2] == 88.5 and isinstance(first[2], float)
    assert first[3] == 0.5  # a percentage is stored as the fraction, shown as 50.0 %
    assert first[4] is False
    assert first[5] == datetime(2024, 4, 1)  # an Excel date
    assert first[6] == datetime(2024, 3, 31, 1, 30)  # local (Paris) time, naive
    assert ws["G3"].value == datetime(2024, 3, 31, 3, 30)
    assert ws["D2"].number_format == "0.0%"
    assert ws["G2"].number_format == "yyyy-mm-dd hh:mm"
    assert ws["F2"].number_format == "yyyy-mm-dd"
    assert ws["A3"].value == "line one\nline two"
    assert ws["C3"].value is None and ws["D4"].value == 1
    assert ws["B4"].value == -5 and ws["E3"].value is True
    assert ws.column_dimensions["G"].width >= 16  # a datetime fits
    # Print-ready: one page wide, the header row on every page, title on top, page numbers.
    # (fitToWidth 1 is the file format's default, so it is not written)
    assert (ws.page_setup.fitToWidth or 1) == 1 and ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows == "$1:$1"
    assert "Learner progress" in (ws.oddHeader.center.text or "")
    assert ws.oddFooter.right.text == "Page &P of &N"
    assert (ws.oddFooter.left.text or "").startswith("Generated 2024-06-03 09:15")

    params = {row[0]: row[1] for row in wb["Parameters"].iter_rows(values_only=True) if row[0]}
    assert "Learner progress" in params
    assert params["Date range"] == "2024-01-01 – 2024-05-31"
    assert params["Timezone"] == "Europe/Paris"
    assert params["Generated at"] == "2024-06-03 09:15 CEST (Europe/Paris)"
    assert params["Rows"] == 3
    # The summary given at close(): figures as numbers, a rate as the fraction its format shows.
    assert params["Enrollments"] == 3
    assert params["Completion rate"] == 0.571
    assert params["Average score"] == "—"
    assert params["Requested by"] == "Jane Manager"


def test_xlsx_strings_are_never_formulas(tmp_path: Path) -> None:
    payloads = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tx", '=HYPERLINK("http://x")']
    rows = [(p, -5, -1.5, None, None, None, None) for p in payloads]
    _, wb = write_xlsx(tmp_path, rows)
    ws = wb["Data"]
    for r, payload in enumerate(payloads, start=2):
        cell = ws.cell(row=r, column=1)
        assert cell.data_type != "f"
        assert cell.value == "'" + payload
        assert ws.cell(row=r, column=2).value == -5  # numbers stay numbers
        assert ws.cell(row=r, column=3).data_type == "n"


def test_xlsx_rolls_over_to_a_new_sheet(tmp_path: Path) -> None:
    rows = [(f"learner {i}", i, None, None, None, None, None) for i in range(7)]
    _, wb = write_xlsx(tmp_path, rows, batch=5, rows_per_sheet=3)
    assert wb.sheetnames == ["Data", "Data (2)", "Data (3)", "Parameters"]
    sheets = [wb[name] for name in wb.sheetnames[:3]]
    got = [[r[1] for r in ws.iter_rows(min_row=2, values_only=True)] for ws in sheets]
    assert got == [[0, 1, 2], [3, 4, 5], [6]]
    for ws in sheets:
        assert ws["A1"].value == "Learner" and ws.freeze_panes == "A2"
    assert [ws.auto_filter.ref for ws in sheets] == ["A1:G4", "A1:G4", "A1:G2"]


def test_xlsx_a_full_last_sheet_is_not_followed_by_an_empty_one(tmp_path: Path) -> None:
    rows = [(f"learner {i}", i, None, None, None, None, None) for i in range(6)]
    _, wb = write_xlsx(tmp_path, rows, batch=6, rows_per_sheet=3)
    assert wb.sheetnames == ["Data", "Data (2)", "Parameters"]


class Code(IntEnum):
    ACTIVE = 3


class Label(str):
    pass


# Values whose cells need care: escapes, control characters, white space at the ends, the
# 1900 date system's leap-year quirk, numbers at float's limits, subclasses of the usual types.
TRICKY_ROWS: list[tuple[Any, ...]] = [
    ("a & b < c > d", 2**53 + 1, 1e-07, 12.345678, True, date(1900, 1, 1), BEFORE_DST),
    ("ctrl \x01\x1f end", Code.ACTIVE, -0.0, 0, False, date(1900, 2, 28), AFTER_DST),
    ("literal _x0041_ stays", 10**17, float("nan"), 1 / 3, None, date(1900, 3, 1), None),
    (" leading", -3, 1e300, 100, True, date(2024, 2, 29), datetime(1900, 1, 1, 12)),
    ("trailing\u2003", 0, 123456.789, None, None, None, datetime(1900, 3, 1, 6, 30)),
    ("", None, None, None, None, None, None),
    (None, None, None, None, None, None, None),
    ("\ufffe and \uffff", 7, 2.5, 85.3, True, datetime(2024, 1, 1, 5), datetime(2024, 7, 1)),
    (Label("a str subclass"), True, Code.ACTIVE, 50, 1, date(2024, 1, 2), None),
    ("=formula", -7, 0.1, 99.99, False, None, datetime(2024, 10, 27, 1, 30)),
]


def _data_rows(path: Path) -> list[str]:
    """The data rows' XML of a workbook's first sheet, each cell's style written as its number
    format (style indexes depend on the order formats were first used)."""
    with zipfile.ZipFile(path) as package:
        styles = package.read("xl/styles.xml").decode()
        sheet = package.read("xl/worksheets/sheet1.xml").decode()
    codes = dict(re.findall(r'<numFmt numFmtId="(\d+)" formatCode="([^"]*)"/>', styles))
    cell_xfs = re.search(r"<cellXfs[^>]*>(.*?)</cellXfs>", styles)
    assert cell_xfs is not None
    xfs = re.findall(r'<xf numFmtId="(\d+)"', cell_xfs.group(1))
    rows = re.findall(r'<row r="(?!1")\d+">.*?</row>', sheet)
    return [re.sub(r' s="(\d+)"', lambda m: f' s="{codes[xfs[int(m[1])]]}"', row) for row in rows]


def test_xlsx_cells_are_exactly_what_xlsxwriter_writes(tmp_path: Path) -> None:
    """The writer serialises the data rows itself (XlsxWriter's per-cell path was most of an
    Excel report's time): every cell must be what XlsxWriter writes for the same value."""
    ours, _ = write_xlsx(tmp_path, TRICKY_ROWS, batch=3)

    reference = tmp_path / "reference.xlsx"
    workbook = xlsxwriter.Workbook(str(reference), {"constant_memory": True})
    formats = {
        T.INTEGER: workbook.add_format({"num_format": "#,##0"}),
        T.NUMBER: workbook.add_format({"num_format": "#,##0.0##"}),
        T.PERCENT: workbook.add_format({"num_format": "0.0%"}),
        T.DATE: workbook.add_format({"num_format": "yyyy-mm-dd"}),
        T.DATETIME: workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
    }
    sheet = workbook.add_worksheet()
    paris = ZoneInfo("Europe/Paris")
    for r, row in enumerate(TRICKY_ROWS, start=1):
        for c, value in enumerate(row):
            fmt = formats.get(COLUMNS[c].type)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if isinstance(value, str):
                sheet.write_string(r, c, "'" + value if value.startswith("=") else value, fmt)
            elif isinstance(value, bool):
                sheet.write_boolean(r, c, value, fmt)
            elif isinstance(value, int | float):
                number = round(value / 100, 3) if COLUMNS[c].type is T.PERCENT else value
                sheet.write_number(
                    r, c, float(number) if type(value) not in (int, float) else number, fmt
                )
            elif isinstance(value, datetime):  # naive means UTC; cells hold Paris time
                moment = value if value.tzinfo else value.replace(tzinfo=UTC)
                sheet.write_datetime(r, c, moment.astimezone(paris).replace(tzinfo=None), fmt)
            else:
                sheet.write_datetime(r, c, value, fmt)
    workbook.close()

    assert _data_rows(ours) == _data_rows(reference)
    assert len(_data_rows(ours)) == len(TRICKY_ROWS) - 1  # a row without values is left out


def test_xlsx_text_that_looks_like_markup_stays_text(tmp_path: Path) -> None:
    rows = [("<r><t>bold?</t></r>", 1, None, None, None, None, None)]
    path, wb = write_xlsx(tmp_path, rows)
    assert wb["Data"]["A2"].value == "<r><t>bold?</t></r>"
    assert wb["Data"].dimensions == "A1:G2"
    with zipfile.ZipFile(path) as package:  # nothing of the writer's scratch files is left
        assert "&lt;r&gt;" in package.read("xl/worksheets/sheet1.xml").decode()
    assert [p.name for p in tmp_path.iterdir()] == ["report.xlsx"]


def test_xlsx_abort_leaves_nothing_behind(tmp_path: Path) -> None:
    writer = XlsxRowWriter(tmp_path / "x.xlsx", COLUMNS, make_context())
    writer.write_rows(ROWS * 1000)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_xlsx_without_rows_still_has_a_header(tmp_path: Path) -> None:
    _, wb = write_xlsx(tmp_path, [])
    assert wb["Data"]["A1"].value == "Learner"
    assert wb["Data"].max_row == 1


# -- PDF ---------------------------------------------------------------------------------------

PDF_COLUMNS = [
    Column("learner", "Learner", T.STRING),
    Column("email", "Email", T.STRING),
    Column("course", "Course code", T.STRING),
    Column("status", "Status", T.STRING),
    Column("progress", "Progress", T.PERCENT),
    Column("score", "Score", T.NUMBER),
    Column("enrolledAt", "Enrolled at", T.DATETIME),
    Column("dueAt", "Due", T.DATE),
    Column("minutes", "Minutes", T.INTEGER),
    Column("overdue", "Overdue", T.BOOLEAN),
]


def pdf_rows(n: int) -> list[tuple[Any, ...]]:
    return [
        (
            f"Learner {i:05d}",
            f"learner{i}@example.com",
            f"SEC-{i % 7:03d}",
            "in-progress" if i % 3 else "completed",
            (i * 7) % 100 + 0.5,
            (i * 13) % 100 / 1.0,
            datetime(2024, 1, 1 + i % 28, 12, 30, tzinfo=UTC),
            date(2024, 2, 1 + i % 28),
            i * 3,
            i % 5 == 0,
        )
        for i in range(n)
    ]


def page_texts(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


async def test_pdf_page_one_header_on_every_page_and_page_numbers(tmp_path: Path) -> None:
    rows = pdf_rows(150)
    rows[3] = ("<script>alert(1)</script> & <b>bold</b>", "x" * 5000, *rows[3][2:])
    path = tmp_path / "report.pdf"
    context = make_context(format="pdf", total_rows=12_345, row_cap=150)

    # The event loop keeps running while the PDF renders in other processes.
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    pages = await render_pdf(path, PDF_COLUMNS, rows, context, chunk_rows=60, processes=2)
    done.set()
    await ticker
    assert max(gaps) < 0.5

    texts = page_texts(path)
    assert pages == len(texts) >= 4
    first = texts[0]
    assert "Learner progress" in first
    assert "Date range" in first and "2024-01-01 – 2024-05-31" in first
    assert "Europe/Paris" in first and "2024-06-03 09:15" in first  # generated at, local time
    assert "Average score" in first and "71.4" in first  # summary figures
    assert "Jane Manager" in first
    assert re.search(r"showing the first 150 of 12,345 rows", first)
    assert "CSV or Excel" in first
    assert f"Page 1 of {pages}" in first
    joined = first.replace("\n", "")  # narrow columns wrap
    assert "<script>alert(1)</script> & <b>bold</b>" in joined  # escaped, shown as text
    assert "x" * 499 + "…" in joined and "x" * 500 not in joined  # long cells are cut
    for number, text in enumerate(texts[1:], start=2):
        assert f"Page {number} of {pages}" in text
        assert "Learner" in text and "Course code" in text and "Enrolled at" in text  # thead
    assert "Learner 00149" in texts[-1]
    assert "2024-01-01 13:30" in first  # 12:30 UTC in Paris
    metadata = PdfReader(path).metadata
    assert metadata is not None
    assert metadata.title == "Learner progress"


async def test_pdf_without_truncation_or_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    pages = await render_pdf(
        path, PDF_COLUMNS, [], make_context(format="pdf", total_rows=0), chunk_rows=50, processes=2
    )
    (text,) = page_texts(path)
    assert pages == 1
    assert "No rows match" in text and "Page 1 of 1" in text
    assert "showing the first" not in text


async def test_a_streamed_pdf_lays_out_chunks_while_rows_arrive(tmp_path: Path) -> None:
    rows = pdf_rows(1300)
    context = make_context(format="pdf", total_rows=1300, row_cap=1200)
    pdf = StreamingPdf(PDF_COLUMNS, context, chunk_rows=300, processes=2, max_rows=1200)
    try:
        for start in range(0, 1300, 100):
            pdf.add(rows[start : start + 100])
        # The layout is fixed after the first 1,000 rows; complete chunks after page one's
        # are already with the render processes before the last rows came in.
        deadline = time.monotonic() + 10
        while not _render_processes() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert _render_processes(), "no chunk was rendering before the fetch ended"
        path = tmp_path / "streamed.pdf"
        pages = await pdf.finish(path, context)
    finally:
        pdf.close()
    assert len(pdf.rows) == 1200  # the cap
    texts = page_texts(path)
    assert pages == len(texts)
    assert re.search(r"showing the first 1,200 of 1,300 rows", texts[0])
    joined = "\n".join(texts)
    found = [int(n) for n in re.findall(r"Learner (\d{5})", joined)]
    assert found == list(range(1200))  # every kept row once, in order, none past the cap
    assert all(f"Page {n} of {pages}" in text for n, text in enumerate(texts, start=1))
    assert not _render_processes()


def test_pdf_layout_and_chunking() -> None:
    context = make_context()
    wide = plan_layout(PDF_COLUMNS, pdf_rows(20), context)
    narrow = plan_layout(PDF_COLUMNS[:4], pdf_rows(20), context)
    assert wide.landscape and not narrow.landscape
    assert abs(sum(wide.widths) - 100) < 0.1
    html = build_chunk_html(PDF_COLUMNS, pdf_rows(2), context, wide, first=False)
    assert "<thead>" in html and "Truncated" not in html and 'class="cover"' not in html
    assert balanced_chunk_size(5000, 1000, 2) == 834
    assert balanced_chunk_size(4000, 1000, 2) == 1000
    assert balanced_chunk_size(10, 1000, 2) == 10


def _render_processes() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "multiprocessing-fork" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


async def test_a_finished_render_leaves_no_processes(tmp_path: Path) -> None:
    await render_pdf(
        tmp_path / "r.pdf", PDF_COLUMNS, pdf_rows(5), make_context(), chunk_rows=50, processes=2
    )
    assert not _render_processes()


async def test_cancelling_a_pdf_render_kills_its_processes(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    before = {p.pid for p in _render_processes()}
    task = asyncio.create_task(
        render_pdf(
            path,
            PDF_COLUMNS,
            pdf_rows(4000),
            make_context(format="pdf"),
            chunk_rows=500,
            processes=2,
        )
    )
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(seen) < 2:
        await asyncio.sleep(0.1)
        seen.update({p.pid: p for p in _render_processes() if p.pid not in before})
    assert len(seen) == 2, "the render processes did not start"
    await asyncio.sleep(2)  # well inside rendering a chunk
    assert not task.done()

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 3
    _gone, alive = psutil.wait_procs(list(seen.values()), timeout=3)
    assert not alive
    assert not [p for p in _render_processes() if p.pid not in before]
    leftovers = await asyncio.to_thread(lambda: list(tmp_path.iterdir()))
    assert not leftovers  # neither the PDF nor its partial file
