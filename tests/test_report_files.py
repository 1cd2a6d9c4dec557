"""Files as a manager opens them: labels instead of codes in PDF and Excel (CSV keeps codes unless
asked), the department tree indented, the definitions stated."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from pypdf import PdfReader

from app.reports.execution.pipeline import LAID_OUT
from app.reports.rendering.pdf.layout import words, wrap_points
from tests.helpers.pdf_progress import render_following
from tests.helpers.tokens import TokenFactory
from tests.test_jobs import JOBS, RANGE, org  # noqa: F401  (the org fixture)


async def _file(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    run_worker: Any,
    report_type: str,
    fmt: str,
    **options: Any,
) -> bytes:
    body: dict[str, Any] = {
        "reportType": report_type,
        "format": fmt,
        "parameters": {"dateRange": RANGE},
        "options": options,
    }
    created = await client.post(JOBS, json=body, headers=headers)
    assert created.status_code == 202, created.text
    await run_worker()
    response = await client.get(f"{JOBS}/{created.json()['id']}/download", headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def _csv_cells(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"))))


def _sheet_cells(content: bytes) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [[c for c in row] for row in book.worksheets[0].iter_rows(values_only=True)]


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


@pytest.mark.usefixtures("org")
async def test_labels_in_pdf_and_excel_codes_in_csv(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    headers = auth("admin")
    plain = _csv_cells(await _file(client, headers, run_worker, "learner-progress", "csv"))
    assert any("in-progress" in row for row in plain)
    labelled = _csv_cells(
        await _file(client, headers, run_worker, "learner-progress", "csv", labels=True)
    )
    assert any("In progress" in row for row in labelled)
    assert not any("in-progress" in row for row in labelled)
    sheet = _sheet_cells(await _file(client, headers, run_worker, "learner-progress", "xlsx"))
    assert any("In progress" in row for row in sheet)
    assert not any("in-progress" in row for row in sheet)
    text = _pdf_text(await _file(client, headers, run_worker, "learner-progress", "pdf"))
    assert "In progress" in text and "in-progress" not in text
    assert "Date field" in text and "Enrolled" in text


@pytest.mark.usefixtures("org")
async def test_department_tree_in_every_format(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    headers = auth("admin")
    rows = _csv_cells(await _file(client, headers, run_worker, "department-summary", "csv"))
    assert rows[0][-2:] == ["Level", "Parent code"]
    body = [r for r in rows if r and r[0] in {"Alpha", "Alpha One", "Bravo"}]
    # Alpha rolls up Alpha One (3 enrollments); Alpha One follows its parent, a level deeper.
    assert [(r[0], r[2], r[-2], r[-1]) for r in body] == [
        ("Alpha", "3", "0", ""),
        ("Alpha One", "1", "1", "ALPHA"),
        ("Bravo", "2", "0", ""),
    ]
    sheet = _sheet_cells(await _file(client, headers, run_worker, "department-summary", "xlsx"))
    names = [r[0] for r in sheet if r and isinstance(r[0], str) and "Alpha" in r[0]]
    assert names == ["Alpha", "\u2003\u2003Alpha One"]
    # Excel offers the tree's columns too (to filter by level, sort back into the tree).
    assert sheet[0][-2:] == [
        "Level",
        "Parent code",
    ]


async def test_pdf_progress_follows_the_rows_laid_out(tmp_path: Path) -> None:
    sink, progress, seen = await render_following(tmp_path / "r.pdf", 120, 40)
    assert sink.rows_laid_out == 120
    assert progress.percent == LAID_OUT
    # It moved in steps as chunks were laid out, not from 45 straight to the end.
    assert len({p for p in seen if 45.0 < p < LAID_OUT}) >= 1


def test_pdf_cells_wrap_between_words_only() -> None:
    assert words("ada.lovelace@demo.example") == ["ada.", "lovelace@", "demo.", "example"]
    assert words("Ada King Lovelace") == ["Ada", "King", "Lovelace"]
    assert wrap_points("ada.lovelace@demo.example") == (
        "ada.\u200blovelace@\u200bdemo.\u200bexample"
    )
    assert wrap_points("v1.2 release") == "v1.2 release"  # not an e-mail: untouched


async def test_every_column_has_a_description_in_the_metadata_api(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    headers = auth("admin")
    base = "/api/v1/reports/metadata/report-types"
    for summary in (await client.get(base, headers=headers)).json():
        detail = (await client.get(f"{base}/{summary['key']}", headers=headers)).json()
        assert all(c["description"] for c in detail["columns"]), summary["key"]
    course = (await client.get(f"{base}/course-completion", headers=headers)).json()
    rate = next(c for c in course["columns"] if c["key"] == "completionRate")
    assert rate["description"].startswith("Completed ÷ (enrolled − withdrawn)")
