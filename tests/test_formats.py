"""The format registry: one description of each format, read by the metadata API, the sinks,
the executor and the download alike."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from botocore.exceptions import EndpointConnectionError
from pymongo.errors import AutoReconnect
from pypdf import PdfReader

from app.config import Settings
from app.reports.execution.outcome import error_kind, retry_delay
from app.reports.formats import FORMATS, SinkOptions
from app.reports.rendering import Column, ColumnType, Figure, RenderContext

BASE = "/api/v1/reports"
METADATA = f"{BASE}/metadata"
COLUMNS = [Column("name", "Learner", ColumnType.STRING), Column("n", "Count", ColumnType.INTEGER)]
RANGE = {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}


def _context(fmt: str, **changes: Any) -> RenderContext:
    values: dict[str, Any] = {
        "title": "Learner progress",
        "report_type": "learner-progress",
        "format": fmt,
        "timezone": "UTC",
        "generated_at": datetime(2026, 6, 3, 7, 15, tzinfo=UTC),
    }
    values.update(changes)
    return RenderContext(**values)


def test_every_format_has_one_consistent_spec(settings: Settings) -> None:
    assert list(FORMATS) == ["csv", "xlsx", "pdf", "json"]
    assert FORMATS["csv"].content_type == "text/csv; charset=utf-8"
    assert FORMATS["json"].file_name("r") == "r.jsonl"
    assert [k for k, s in FORMATS.items() if not s.for_people] == ["csv", "json"]
    for key, spec in FORMATS.items():
        assert spec.key == key and spec.file_name("r") == f"r.{spec.extension}"
        assert spec.max_rows(settings) >= 1
    assert [k for k, s in FORMATS.items() if s.truncates] == ["pdf"]
    assert FORMATS["pdf"].row_limit(settings) is None
    assert FORMATS["pdf"].row_cap(settings) == settings.pdf_max_rows
    assert FORMATS["xlsx"].row_limit(settings) == settings.xlsx_max_rows
    assert FORMATS["csv"].row_cap(settings) is None


@pytest.mark.parametrize("fmt", list(FORMATS))
async def test_every_sink_takes_the_same_batches(tmp_path: Path, fmt: str) -> None:
    spec = FORMATS[fmt]
    path = tmp_path / spec.file_name("report")
    options = SinkOptions(pdf_chunk_rows=50, render_processes=1, max_rows=4)
    sink = await spec.open_sink(path, COLUMNS, _context(fmt), options)
    batches = [[(f"L{i}", i) for i in range(start, start + 3)] for start in (0, 3)]
    sink.expect_rows(6)
    for batch in batches:
        await sink.add(batch)
    learners = Figure("learners", "Learners", 6, ColumnType.INTEGER)
    await sink.finish(_context(fmt, summary=[learners], total_rows=6))

    if fmt == "csv":
        rows = list(csv.reader(path.open(encoding="utf-8")))
        assert sink.rows_written == 6 and rows[0] == ["Learner", "Count"] and len(rows) == 7
    elif fmt == "json":
        header, *lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
        assert sink.rows_written == 6 and len(lines) == 6
        assert header["rowCount"] == 6 and header["summary"][0]["value"] == "6"
        assert lines[0] == {"name": "L0", "n": 0}
    elif fmt == "xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        assert sink.rows_written == 6 and len(list(sheet.iter_rows(values_only=True))) == 7
    else:
        text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
        assert sink.rows_written == 4  # the cap: the rest is dropped, and page one says so
        assert "L3" in text and "L4" not in text and "showing the first 4 of 6 rows" in text


async def test_aborting_a_sink_twice_never_raises(tmp_path: Path) -> None:
    for fmt, spec in FORMATS.items():
        path = tmp_path / spec.file_name(f"aborted-{fmt}")
        sink = await spec.open_sink(path, COLUMNS, _context(fmt), SinkOptions(max_rows=10))
        await sink.add([("a", 1)])
        sink.abort()
        sink.abort()  # idempotent, never raises
        assert not path.with_name(f".{path.name}.part").exists()
        assert not path.with_name(f"{path.name}.rows").exists()


async def test_metadata_and_the_download_use_the_specs(
    client: httpx.AsyncClient, auth: Any, run_worker: Any, settings: Settings
) -> None:
    headers = auth("admin")
    listed = (await client.get(f"{METADATA}/formats", headers=headers)).json()
    assert [f["code"] for f in listed] == list(FORMATS)
    for item in listed:
        spec = FORMATS[item["code"]]
        assert item["contentType"] == spec.content_type
        assert item["fileExtension"] == spec.extension
        assert item["maxRows"] == spec.max_rows(settings)
        assert item["truncates"] is spec.truncates

    jobs = {}
    for fmt in FORMATS:
        body = {"reportType": "learner-progress", "format": fmt, "parameters": {"dateRange": RANGE}}
        created = await client.post(f"{BASE}/jobs", json=body, headers=headers)
        assert created.status_code == 202, created.text
        jobs[fmt] = created.json()["id"]
    await run_worker()
    for fmt, job_id in jobs.items():
        done = (await client.get(f"{BASE}/jobs/{job_id}", headers=headers)).json()
        assert done["status"] == "completed", done
        assert done["result"]["contentType"] == FORMATS[fmt].content_type
        assert done["result"]["fileName"].endswith(f".{FORMATS[fmt].extension}")
        response = await client.get(f"{BASE}/jobs/{job_id}/download", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == FORMATS[fmt].content_type


def test_retry_back_off_doubles_and_errors_are_named_by_kind(settings: Settings) -> None:
    base = settings.model_copy(update={"job_retry_backoff_seconds": 10.0})
    assert [retry_delay(base, attempt) for attempt in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert error_kind(AutoReconnect("db gone")) == "database"
    assert error_kind(EndpointConnectionError(endpoint_url="http://s3")) == "storage"
    assert error_kind(OSError("disk full")) == "storage"
    assert error_kind(RuntimeError("bug")) == "processing"
