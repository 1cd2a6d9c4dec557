"""Formula injection end to end: learner names a spreadsheet would run as formulas come out of
the API's CSV and Excel downloads as inert text."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import openpyxl
import pytest

from tests import factories as f
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
EVIL_NAMES = [
    '=HYPERLINK("http://evil","x")',
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
    "=cmd|' /C calc'!A0",
]
BODY = {
    "reportType": "learner-progress",
    "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
}


@pytest.fixture
async def evil_learners(resources: Any) -> list[str]:
    dept = await f.department("=Dept()", code="D1")
    course = await f.course("+C1", title="@Course")
    for i, name in enumerate(EVIL_NAMES):
        learner = await f.user(name, dept=dept, email=f"-{i}@example.test")
        await f.enrollment(learner, course, enrolled_at=f.dt(2026, 3, 1))
    return EVIL_NAMES


async def _download(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, fmt: str
) -> bytes:
    headers = auth("admin")
    created = await client.post(JOBS, json={**BODY, "format": fmt}, headers=headers)
    assert created.status_code == 202, created.text
    await run_worker()
    response = await client.get(f"{JOBS}/{created.json()['id']}/download", headers=headers)
    assert response.status_code == 200, response.text
    return response.content


async def test_csv_cells_that_look_like_formulas_start_with_a_quote(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, evil_learners: list[str]
) -> None:
    content = await _download(client, auth, run_worker, "csv")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    header = rows[0]
    names = [r[header.index("Learner")] for r in rows[1:] if r]
    assert sorted(names) == sorted("'" + n for n in evil_learners)
    for row in rows[1:]:
        for column in ("Learner", "Email", "Department", "Course code", "Course"):
            cell = row[header.index(column)]
            assert not cell or cell[0] not in "=+-@\t\r", (column, cell)


async def test_excel_cells_that_look_like_formulas_are_strings(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, evil_learners: list[str]
) -> None:
    content = await _download(client, auth, run_worker, "xlsx")
    book = openpyxl.load_workbook(io.BytesIO(content))
    sheet = book[book.sheetnames[0]]
    header = [c.value for c in sheet[1]]
    learner = header.index("Learner")
    seen = []
    # The data rows (the totals row below them holds the SUBTOTAL formulas).
    for row in sheet.iter_rows(min_row=2, max_row=sheet.max_row - 1):
        if row[learner].value is None:
            continue
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
            if isinstance(cell.value, str):
                assert cell.value[0] not in "=+-@\t\r", (cell.coordinate, cell.value)
        assert row[learner].data_type == "s"
        seen.append(row[learner].value)
    assert len(seen) == len(evil_learners)
    # The only formulas are the totals row's, of our own making.
    totals = sheet[sheet.max_row]
    assert totals[0].value == "Total"
    assert all(
        c.value.startswith(("=SUBTOTAL(", "=IF(SUBTOTAL(")) for c in totals if c.data_type == "f"
    )
    # The text is kept, only made inert (XlsxWriter stores CR as `_x000D_`, as Excel expects).
    kept = {v.replace("_x000D_", "\r") for v in seen}
    for name in evil_learners:
        assert "'" + name in kept, (name, kept)
