"""The row index of a CSV or JSON Lines file: each entry is where its row starts, whatever the
bytes before it (a byte-order mark, multi-line cells, non-ASCII text, a header written last),
and storage reads the byte ranges it points at, locally and on S3."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.config import Settings
from app.reports.previews.rows import parse_csv, parse_json_lines
from app.reports.rendering import (
    Column,
    ColumnType,
    CsvRowWriter,
    JsonLinesRowWriter,
    RenderContext,
    RowIndex,
)
from app.reports.rendering.base import Figure
from app.storage import LocalStorage, build_storage

COLUMNS = [
    Column("name", "Name", ColumnType.STRING),
    Column("n", "Number", ColumnType.INTEGER),
    Column("score", "Score", ColumnType.NUMBER),
    Column("done", "Done", ColumnType.BOOLEAN),
    Column("at", "At", ColumnType.DATETIME),
]


def _context() -> RenderContext:
    return RenderContext(
        title="T",
        report_type="t",
        format="csv",
        timezone="Europe/Berlin",
        generated_at=datetime(2026, 3, 1, tzinfo=UTC),
        summary=[Figure("rows", "Rows", 20, ColumnType.INTEGER)],
        figure_definitions={"Rows": "Every row"},
    )


def _rows(count: int) -> list[tuple[object, ...]]:
    return [
        (
            f'Zoë {i}\nsecond line, "quoted"' if i % 4 == 0 else f"plain {i}",
            i,
            None if i % 5 == 0 else i / 4,
            i % 2 == 0,
            datetime(2026, 3, 28 + i % 3, 12),  # across the change to summer time
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("bom", [False, True])
def test_every_csv_index_entry_is_the_start_of_its_row(tmp_path: Path, bom: bool) -> None:
    path = tmp_path / "r.csv"
    writer = CsvRowWriter(path, COLUMNS, _context(), bom=bom, index_every=3)
    rows = _rows(20)
    for start in range(0, 20, 7):  # batches across the entries
        writer.write_rows(rows[start : start + 7])
    writer.close()
    index = writer.row_index
    assert index is not None and index.rows == 20 and index.size == path.stat().st_size
    assert len(index.offsets) == 7  # rows 0, 3, …, 18
    data = path.read_bytes()
    whole = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))[1:]
    for entry, offset in enumerate(index.offsets):
        parsed = list(csv.reader(io.StringIO(data[offset:].decode(), newline="")))
        assert parsed == whole[entry * 3 :]
    for first, count in ((0, 2), (4, 5), (17, 3), (19, 10)):
        start_row, start, stop = index.span(first, count)
        assert start_row <= first < start_row + 3
        page = parse_csv(data[start:stop], COLUMNS, first - start_row, count)
        assert [r["n"] for r in page] == list(range(first, min(first + count, 20)))
    assert parse_csv(data[index.offsets[0] :], COLUMNS, 0, 1)[0] == {
        "name": 'Zoë 0\nsecond line, "quoted"',
        "n": 0,
        "score": None,
        "done": True,
        "at": "2026-03-28T13:00:00+01:00",
    }


def test_json_lines_header_comes_first_and_the_index_follows_it(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    writer = JsonLinesRowWriter(path, COLUMNS, _context(), index_every=3)
    rows = _rows(20)
    writer.write_rows(rows[:10])
    writer.write_rows(rows[10:])
    writer.finish(_context())
    assert not path.with_name("r.jsonl.rows").exists()
    index = writer.row_index
    assert index is not None and index.rows == 20 and index.size == path.stat().st_size
    data = path.read_bytes()
    header, *lines = data.split(b"\n")[:-1]
    assert json.loads(header)["summary"] == [
        {"label": "Rows", "value": "20", "definition": "Every row"}
    ]
    assert json.loads(header)["columns"][2] == {
        "key": "score",
        "label": "Score",
        "type": "number",
        "unit": None,
        "definition": None,
    }
    assert index.offsets[0] == len(header) + 1
    for entry, offset in enumerate(index.offsets):
        assert parse_json_lines(data[offset:], 0, 1) == [json.loads(lines[entry * 3])]
    summer = json.loads(lines[1])
    assert summer["at"] == "2026-03-29T14:00:00+02:00" and summer["done"] is False


def test_an_index_survives_its_bytes() -> None:
    index = RowIndex(1000, [10, 500, 990], rows=2500, size=1400)
    again = RowIndex.from_bytes(index.to_bytes())
    assert again == index
    assert again.span(0, 100) == (0, 10, 500)
    assert again.span(999, 2) == (0, 10, 990)  # crosses an entry: up to the one after
    assert again.span(2400, 100) == (2000, 990, None)  # the last: to the end of the file
    assert RowIndex().span(0, 10) == (0, 0, None)


async def test_local_and_s3_storage_read_byte_ranges(
    tmp_path: Path, s3_settings: Settings, resources: object
) -> None:
    content = bytes(range(256)) * 40
    for storage in (LocalStorage(tmp_path), await build_storage(s3_settings)):
        try:
            await storage.write_stream("reports/x/a1/f.csv", _once(content), "text/csv")
            assert await storage.read_range("reports/x/a1/f.csv", 0, 10) == content[:10]
            assert await storage.read_range("reports/x/a1/f.csv", 5000, 5100) == content[5000:5100]
            assert await storage.read_range("reports/x/a1/f.csv", 10_000) == content[10_000:]
            assert await storage.read_range("reports/x/a1/f.csv", 20_000) == b""
            with pytest.raises(FileNotFoundError):
                await storage.read_range("reports/x/a1/missing.csv", 0, 10)
        finally:
            await storage.close()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
