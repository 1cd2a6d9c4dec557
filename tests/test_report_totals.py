"""The totals row: in Excel (SUBTOTAL formulas over the data rows with their values cached, so
they follow the autofilter) and at the end of the PDF's table, equal to the sums, means and
rates of the sums of the CSV's rows, and to a preview's `totals`; the CSV stays pure data. The
department tree in Excel: outline levels equal to the tree levels, `level` and `parentCode`
columns as in the CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import shutil
import subprocess
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
from pypdf import PdfReader

from app.reports.rendering.base import Column, ColumnType, RenderContext
from app.reports.rendering.pdf.layout import format_cell
from app.reports.rendering.pdf.streaming import render_pdf
from app.reports.rendering.totals import SUM, Total, TotalKind, TotalsRow, rate_of
from app.reports.rendering.xlsx import XlsxRowWriter
from app.reports.types import get_report_type
from app.reports.types.totals import TotalsAccumulator
from app.runtime.resources import Resources
from app.security import DataScope
from tests.helpers.tokens import TokenFactory
from tests.reports_fixture import Dataset, build_dataset

BASE = "/api/v1/reports"
PREVIEW = f"{BASE}/preview"
JOBS = f"{BASE}/jobs"
MARCH = {"preset": "custom", "from": "2026-02-01", "to": "2026-03-31"}
TIMEZONE = "Europe/Berlin"
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)

# Every type and shape with a totals row, over the fixture's February and March.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("learner-progress", {"dateRange": MARCH}),
    ("course-completion", {"dateRange": MARCH}),
    ("compliance-status", {"asOfDate": "2026-03-20"}),
    ("assessment-results", {"dateRange": MARCH}),
    ("assessment-results", {"dateRange": MARCH, "groupBy": "course"}),
    ("learning-activity", {"dateRange": MARCH, "granularity": "week"}),
    ("department-summary", {"dateRange": MARCH, "includeSubDepartments": False}),
]


@pytest.fixture
async def data(resources: Resources) -> Dataset:
    return await build_dataset()


def _body(report_type: str, parameters: dict[str, Any], fmt: str, **extra: Any) -> dict[str, Any]:
    return {
        "reportType": report_type,
        "format": fmt,
        "parameters": {**parameters, "timezone": TIMEZONE},
        **extra,
    }


async def _files(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    run_worker: Any,
    report_type: str,
    parameters: dict[str, Any],
    formats: tuple[str, ...],
    **extra: Any,
) -> dict[str, bytes]:
    ids = {}
    for fmt in formats:
        created = await client.post(
            JOBS, json=_body(report_type, parameters, fmt, **extra), headers=headers
        )
        assert created.status_code == 202, created.text
        ids[fmt] = created.json()["id"]
    await run_worker()
    out = {}
    for fmt, job_id in ids.items():
        response = await client.get(f"{JOBS}/{job_id}/download", headers=headers)
        assert response.status_code == 200, response.text
        out[fmt] = response.content
    return out


def _number(text: str) -> Decimal | None:
    return Decimal(text) if text not in ("", None) else None


def _round1(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _plain(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def expected_totals(
    keys: list[str], rows: list[list[str]], totals: dict[str, Total]
) -> dict[str, Any]:
    """Each total worked out from the CSV's cells, as a reader would with a calculator."""
    column = {key: [row[i] for row in rows] for i, key in enumerate(keys)}

    def numbers(key: str) -> list[Decimal]:
        return [n for cell in column[key] if (n := _number(cell)) is not None]

    out: dict[str, Any] = {}
    for key, total in totals.items():
        if total.kind is TotalKind.SUM:
            out[key] = _plain(sum(numbers(key), Decimal(0)))
        elif total.kind is TotalKind.MEAN:
            values = numbers(key)
            out[key] = _round1(sum(values, Decimal(0)) / len(values)) if values else None
        elif total.kind is TotalKind.COUNT:
            out[key] = sum(1 for cell in column[key] if cell != "")
        elif total.kind is TotalKind.MIN:
            out[key] = _plain(min(numbers(key))) if numbers(key) else None
        elif total.kind is TotalKind.MAX:
            out[key] = _plain(max(numbers(key))) if numbers(key) else None
        else:
            assert total.part is not None
            part = sum(numbers(total.part), Decimal(0))
            whole = sum((sum(numbers(k), Decimal(0)) for k in total.whole), Decimal(0))
            whole -= sum((sum(numbers(k), Decimal(0)) for k in total.less), Decimal(0))
            out[key] = _round1(100 * part / whole) if whole else None
    return out


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) < 1e-9


@pytest.mark.parametrize(("report_type", "parameters"), CASES)
async def test_totals_row_in_excel_pdf_and_preview_equal_the_csv_rows(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    run_worker: Any,
    data: Dataset,
    report_type: str,
    parameters: dict[str, Any],
) -> None:
    headers = auth("admin")
    preview = await client.post(
        PREVIEW, json=_body(report_type, parameters, "csv"), headers=headers
    )
    assert preview.status_code == 200, preview.text
    answer = preview.json()
    keys = [c["key"] for c in answer["columns"]]
    files = await _files(
        client, headers, run_worker, report_type, parameters, ("csv", "xlsx", "pdf")
    )

    # CSV: the rows only, no totals row.
    table = list(csv.reader(io.StringIO(files["csv"].decode("utf-8"))))
    rows = table[1:]
    assert rows, "the fixture gives every case rows"
    assert not any(row and row[0] == "Total" for row in rows)

    definition = get_report_type(report_type)
    resolved = definition.resolve(parameters | {"timezone": TIMEZONE}, DataScope(), NOW).parameters
    totals = dict(definition.totals_for(resolved))
    assert totals, f"{report_type} has a totals row"
    expected = expected_totals(keys, rows, totals)

    # Preview: the same figures.
    assert answer["totals"].keys() == expected.keys()
    for key, value in expected.items():
        assert _same(answer["totals"][key], value), (key, answer["totals"][key], value)

    # Excel: the row below the data, labelled, SUBTOTAL formulas with the values cached.
    formulas = openpyxl.load_workbook(io.BytesIO(files["xlsx"])).worksheets[0]
    cached = openpyxl.load_workbook(io.BytesIO(files["xlsx"]), data_only=True).worksheets[0]
    header = [c.value for c in formulas[1]]
    by_label = {c["label"]: c["key"] for c in answer["columns"]}
    excel_keys = [by_label[label] for label in header]
    last = formulas.max_row
    assert last == len(rows) + 2, "the totals row follows the data rows directly"
    assert formulas.auto_filter.ref.endswith(str(last - 1)), "the filter covers the data only"
    first_key = excel_keys[0]
    if first_key not in totals:
        assert cached.cell(last, 1).value == "Total"
    for c, key in enumerate(excel_keys, start=1):
        formula, value = formulas.cell(last, c).value, cached.cell(last, c).value
        if key not in totals:
            if c > 1:
                assert value is None, key
            continue
        total, column = totals[key], openpyxl.utils.get_column_letter(c)
        want = expected[key]
        if want is not None and answer["columns"][keys.index(key)]["type"] == "percent":
            want = round(want / 100, 3)
        if want is None:
            assert value in (None, ""), (key, value)
        else:
            assert _same(value, want), (key, value, want)
        assert isinstance(formula, str) and formula.startswith("="), (key, formula)
        data_range = f"{column}2:{column}{last - 1}"
        if total.kind is TotalKind.SUM:
            assert formula == f"=SUBTOTAL(109,{data_range})"
        elif total.kind is TotalKind.COUNT:
            assert formula == f"=SUBTOTAL(103,{data_range})"
        elif total.kind is TotalKind.RATE:
            # The rate of the totals cells of the same row.
            assert "SUBTOTAL" not in formula and f"{last}" in formula
        else:
            assert "SUBTOTAL(10" in formula and data_range in formula

    # PDF: the totals row ends the table on the last page.
    pages = PdfReader(io.BytesIO(files["pdf"])).pages
    last_page = pages[-1].extract_text()
    assert "Total" in last_page
    assert sum(page.extract_text().count("Total") for page in pages) >= 1
    tz = ZoneInfo(TIMEZONE)
    line = next(line for line in last_page.splitlines() if line.startswith("Total"))
    for key, value in expected.items():
        if value is None:
            continue
        kind = ColumnType(answer["columns"][keys.index(key)]["type"])
        shown = ColumnType.INTEGER if totals[key].kind is TotalKind.COUNT else kind
        assert format_cell(value, shown, tz) in line, (key, value, line)


async def test_completion_rate_total_is_the_rate_of_the_totals_not_an_average(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, data: Dataset
) -> None:
    """course-completion: completed ÷ (enrolled − withdrawn) over every course together."""
    definition = get_report_type("course-completion")
    assert definition.totals["completionRate"] == rate_of("completed", "enrolled", "withdrawn")
    assert definition.totals["enrolled"] == SUM
    headers = auth("admin")
    preview = await client.post(
        PREVIEW, json=_body("course-completion", {"dateRange": MARCH}, "csv"), headers=headers
    )
    rows = preview.json()["rows"]
    totals = preview.json()["totals"]
    enrolled = sum(r["enrolled"] for r in rows)
    completed = sum(r["completed"] for r in rows)
    withdrawn = sum(r["withdrawn"] for r in rows)
    assert totals["completionRate"] == round(100 * completed / (enrolled - withdrawn), 1)
    rates = [r["completionRate"] for r in rows if r["completionRate"] is not None]
    average = round(sum(rates) / len(rates), 1)
    assert average != totals["completionRate"], "the fixture tells the two apart"


async def test_department_tree_in_excel_is_an_outline_with_level_and_parent_columns(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, data: Dataset
) -> None:
    headers = auth("admin")
    files = await _files(
        client,
        headers,
        run_worker,
        "department-summary",
        {"dateRange": MARCH},
        ("csv", "xlsx"),
    )
    table = list(csv.reader(io.StringIO(files["csv"].decode("utf-8"))))
    assert table[0][-2:] == ["Level", "Parent code"]
    tree = [(row[1], int(row[-2]), row[-1]) for row in table[1:]]
    assert {level for _, level, _ in tree} >= {0, 1}, "the fixture has a sub-department"

    book = openpyxl.load_workbook(io.BytesIO(files["xlsx"]))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[-2:] == ["Level", "Parent code"]
    code_at = header.index("Code") + 1
    excel = [
        (
            sheet.cell(r, code_at).value,
            sheet.cell(r, len(header) - 1).value,
            sheet.cell(r, len(header)).value or "",
        )
        for r in range(2, sheet.max_row + 1)
    ]
    assert excel == tree, "the same rows, levels and parents as the CSV"
    levels = [sheet.row_dimensions[r].outline_level for r in range(2, sheet.max_row + 1)]
    assert levels == [level for _, level, _ in tree]
    assert sheet.sheet_properties.outlinePr.summaryBelow is False
    assert sheet.sheet_format.outlineLevelRow == max(levels)
    # A tree's rows roll up their subtrees: no totals row below them.
    assert sheet.max_row == len(tree) + 1


async def test_totals_label_in_german(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, data: Dataset
) -> None:
    files = await _files(
        client,
        auth("admin"),
        run_worker,
        "course-completion",
        {"dateRange": MARCH},
        ("xlsx",),
        locale="de",
    )
    sheet = openpyxl.load_workbook(io.BytesIO(files["xlsx"])).worksheets[0]
    assert sheet.cell(sheet.max_row, 1).value == "Gesamt"


COLUMNS = [
    Column("name", "Name"),
    Column("enrolled", "Enrolled", ColumnType.INTEGER),
    Column("completed", "Completed", ColumnType.INTEGER),
    Column("rate", "Rate", ColumnType.PERCENT),
]


async def test_pdf_in_chunks_ends_with_one_totals_row_after_the_last_chunk(
    tmp_path: Path,
) -> None:
    rows = [(f"Row {i:03d}", 10, i % 10, float(i % 10) * 10) for i in range(150)]
    row = TotalsRow(
        "Total",
        {"enrolled": SUM, "completed": SUM, "rate": rate_of("completed", "enrolled")},
        {"enrolled": 1500, "completed": 675, "rate": 45.0},
    )
    context = RenderContext(
        title="Course figures",
        report_type="course-completion",
        format="pdf",
        timezone="UTC",
        generated_at=NOW,
        total_rows=len(rows),
        totals=row,
    )
    path = tmp_path / "totals.pdf"
    await render_pdf(path, COLUMNS, rows, context, chunk_rows=40, processes=2)
    pages = PdfReader(path).pages
    assert len(pages) > 2
    texts = [page.extract_text() for page in pages]
    assert [t.count("Total\n") + t.count("Total ") for t in texts[:-1]] == [0] * (len(pages) - 1)
    last = texts[-1]
    assert "Row 149" in last
    total_line = next(line for line in last.splitlines() if line.startswith("Total"))
    assert "1,500" in total_line and "675" in total_line and "45.0%" in total_line
    assert last.index("Row 149") < last.index(total_line)
    # Every page but the first repeats the header row, unchanged.
    assert all("Enrolled" in t and "Completed" in t for t in texts)


def test_totals_add_up_exactly_and_skip_what_is_not_a_number() -> None:
    columns = [*COLUMNS, Column("score", "Score", ColumnType.NUMBER)]
    totals = {
        "enrolled": SUM,
        "name": Total(TotalKind.COUNT),
        "score": Total(TotalKind.MEAN),
        "rate": rate_of("completed", "enrolled"),
    }
    accumulator = TotalsAccumulator(columns, totals)
    accumulator.add(
        [
            ("a", 10, 3, None, 0.1),
            ("b", True, 1, None, 0.2),  # a flag is no count
            (None, 5, 2, None, float("inf")),  # nor is an infinite score a score
            ("c", None, None, None, 60.35),
        ]
    )
    # 0.1 + 0.2 + 60.35 = 60.65 exactly: the mean 20.2166… rounds to 20.2; the rate is
    # (3 + 1 + 2) ÷ (10 + 5), the flag left out of the enrolled.
    assert accumulator.result() == {"enrolled": 15, "name": 3, "score": 20.2, "rate": 40.0}
    # A rate whose inputs a run does not have is left out rather than guessed.
    without_completed = TotalsAccumulator(COLUMNS[:2] + COLUMNS[3:], totals).result()
    assert without_completed is not None and set(without_completed) == {"enrolled", "name"}


async def test_excel_totals_follow_the_rows_a_filter_leaves_visible(tmp_path: Path) -> None:
    """LibreOffice recalculates the totals row with rows 3 and 5 hidden (as a filter hides
    them): the SUBTOTAL formulas count only the visible rows."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice is not installed")
    rows = [(f"Course {i}", 10 * i, i, float(i)) for i in range(1, 7)]
    row = TotalsRow(
        "Total",
        {"enrolled": SUM, "completed": SUM, "rate": rate_of("completed", "enrolled")},
        {"enrolled": 210, "completed": 21, "rate": 10.0},
    )
    context = RenderContext(
        title="Courses", report_type="x", format="xlsx", timezone="UTC", generated_at=NOW
    )
    writer = XlsxRowWriter(tmp_path / "book.xlsx", COLUMNS, replace(context, totals=row))
    writer.write_rows(rows)
    writer.close()
    cached = openpyxl.load_workbook(tmp_path / "book.xlsx", data_only=True).worksheets[0]
    assert [c.value for c in cached[8]] == ["Total", 210, 21, 0.1]

    # Hide rows 3 and 5 (courses 2 and 4) and drop the cached values: LibreOffice computes.
    hidden = tmp_path / "hidden.xlsx"
    with (
        zipfile.ZipFile(tmp_path / "book.xlsx") as source,
        zipfile.ZipFile(hidden, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                text = data.decode("utf-8")
                for r in (3, 5):
                    text = text.replace(f'<row r="{r}">', f'<row r="{r}" hidden="1">')
                text = re.sub(r"(<f>[^<]*</f>)<v>[^<]*</v>", r"\1", text)
                data = text.encode("utf-8")
            target.writestr(info, data)
    await asyncio.to_thread(
        subprocess.run,
        [soffice, "--headless", "--convert-to", "csv", "--outdir", str(tmp_path), str(hidden)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    last = (tmp_path / "hidden.csv").read_text().strip().splitlines()[-1].split(",")
    # Visible: courses 1, 3, 5, 6: enrolled 150, completed 15, rate 15 ÷ 150 = 10.0 %.
    assert last[:3] == ["Total", "150", "15"]
    assert last[3] in ("10.0%", "10%")


def test_excel_totals_over_several_data_sheets_name_every_sheet(tmp_path: Path) -> None:
    row = TotalsRow(
        "Total",
        {"enrolled": SUM, "completed": SUM, "rate": rate_of("completed", "enrolled")},
        {"enrolled": 280, "completed": 28, "rate": 10.0},
    )
    context = RenderContext(
        title="Courses", report_type="x", format="xlsx", timezone="UTC", generated_at=NOW
    )
    path = tmp_path / "book.xlsx"
    writer = XlsxRowWriter(path, COLUMNS, replace(context, totals=row), rows_per_sheet=3)
    writer.write_rows([(f"Course {i}", 10 * i, i, 10.0) for i in range(1, 8)])
    writer.close()
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Data", "Data (2)", "Data (3)", "Parameters"]
    first, last = book["Data"], book["Data (3)"]
    assert first.max_row == 4, "only the last data sheet has a totals row"
    assert [c.value for c in last[3]][:3] == [
        "Total",
        "=SUBTOTAL(109,'Data'!B2:B4,'Data (2)'!B2:B4,B2:B2)",
        "=SUBTOTAL(109,'Data'!C2:C4,'Data (2)'!C2:C4,C2:C2)",
    ]
    cached = openpyxl.load_workbook(path, data_only=True)["Data (3)"]
    assert [c.value for c in cached[3]] == ["Total", 280, 28, 0.1]
