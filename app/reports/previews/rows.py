"""A completed job's stored rows read back as JSON pages, at any depth in constant time.

A CSV or JSON Lines file is stored with its row index beside it (`RowIndex`: the byte offset of
every 1,000th row, written while the file was produced). A page is one ranged read of storage —
from the index entry at or before its first row to the entry after its last — parsed and
typed: at most a page and 1,000 rows more are read, whether the page is the first or the
millionth. Access is the download's: the same visibility, expiry and re-check of the caller's
data scope (`jobs.service.prepare_download`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

from app.errors import Conflict, Gone
from app.i18n import DEFAULT_LOCALE, LOCALES, locale_spec
from app.reports.jobs import service as jobs
from app.reports.jobs.models import ReportJob
from app.reports.previews.paging import RowsPosition, read_rows_cursor, rows_cursor
from app.reports.previews.schemas import ColumnOut, RowObject, RowsPage
from app.reports.rendering import Column, ColumnType, RowIndex
from app.reports.rendering.choice import ColumnChoice
from app.reports.rendering.jsonl import column_document
from app.reports.rendering.present import localised
from app.reports.schedules.changes.runs import CHANGE_COLUMN
from app.reports.types import get_report_type
from app.reports.types.choice import stored_choice
from app.runtime.resources import Resources
from app.security import Principal
from app.storage import Storage

READABLE_FORMATS = ("csv", "json")
CsvSeparators = tuple[str, str]  # (field delimiter, decimal separator)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _cell_reader(column: Column, decimal: str = ".") -> Callable[[str], Any]:
    """A CSV cell back to the value the JSON Lines file of the same job holds (an empty cell
    is null; datetimes and dates stay the ISO text CSV printed; `decimal`: the file's decimal
    separator)."""
    kind = column.type

    def read(cell: str) -> Any:
        if cell == "":
            return None
        try:
            if kind is ColumnType.INTEGER:
                return int(cell)
            if kind in (ColumnType.NUMBER, ColumnType.PERCENT):
                return float(cell.replace(decimal, ".") if decimal != "." else cell)
        except ValueError:
            return cell
        if kind is ColumnType.BOOLEAN:
            return {"true": True, "false": False}.get(cell, cell)
        return cell

    return read


def parse_csv(
    data: bytes,
    columns: Sequence[Column],
    skip: int,
    count: int,
    separators: CsvSeparators = (",", "."),
) -> list[RowObject]:
    """Rows `[skip, skip + count)` of CSV bytes that start at a row's beginning, written with
    `separators` (field delimiter, decimal separator)."""
    delimiter, decimal = separators
    keys = [c.key for c in columns]
    readers = [_cell_reader(c, decimal) for c in columns]
    rows: list[RowObject] = []
    text = io.StringIO(data.decode("utf-8"), newline="")
    reader = csv.reader(text, dialect="excel", delimiter=delimiter)
    for number, cells in enumerate(reader):
        if number < skip:
            continue
        if len(rows) >= count:
            break
        if len(cells) != len(keys):
            raise ValueError(f"a stored CSV row has {len(cells)} cells, expected {len(keys)}")
        rows.append({k: read(c) for k, read, c in zip(keys, readers, cells, strict=True)})
    return rows


def parse_json_lines(data: bytes, skip: int, count: int) -> list[RowObject]:
    """Rows `[skip, skip + count)` of JSON Lines bytes that start at a row's beginning (lines
    end with `\\n` only: a JSON string may hold U+2028, which is no line end here)."""
    lines = data.split(b"\n")
    return [json.loads(line) for line in lines[skip : skip + count] if line]


async def read_page(
    storage: Storage,
    key: str,
    fmt: str,
    index: RowIndex,
    columns: Sequence[Column],
    first: int,
    count: int,
    separators: CsvSeparators = (",", "."),
) -> list[RowObject]:
    """Rows `[first, first + count)` of a stored file, by one ranged read."""
    if count <= 0 or first >= index.rows:
        return []
    start_row, start, stop = index.span(first, count)
    data = await storage.read_range(key, start, stop)
    skip = first - start_row
    if fmt == "json":
        return parse_json_lines(data, skip, count)
    return parse_csv(data, columns, skip, count, separators)


def csv_separators(job: ReportJob) -> CsvSeparators:
    """The field delimiter and decimal separator the job's CSV was written with: its options',
    else its locale's."""
    spec = locale_spec(job.locale if job.locale in LOCALES else DEFAULT_LOCALE)
    return (
        job.options.csv_delimiter or spec.csv_delimiter,
        job.options.csv_decimal or spec.csv_decimal,
    )


async def job_rows(
    resources: Resources, principal: Principal, job_id: str, cursor: str | None, limit: int
) -> tuple[RowsPage, ReportJob]:
    """A page of the job's rows, and the job (for the audit trail)."""
    prepared = await jobs.prepare_download(resources, principal, job_id)
    job, result = prepared.job, prepared.job.result
    assert result is not None
    if job.format not in READABLE_FORMATS:
        raise Conflict(
            f"A {job.format} file's rows cannot be read as JSON; run the report as csv or json.",
            code="job-rows-unavailable",
        )
    if result.row_index_key is None:
        raise Conflict(
            "This file was made before its rows could be read back; run the report again.",
            code="job-rows-unavailable",
        )
    position: RowsPosition = read_rows_cursor(cursor, str(job.id))
    definition = get_report_type(job.report_type)
    resolved = job.resolved_parameters or {}
    # The columns the file holds: the job's choice, in its order.
    columns = ColumnChoice(tuple(stored_choice(definition, resolved, job.columns))).columns(
        definition.columns_for(resolved)
    )
    if result.change_column:  # a change report's run: each row's mark, last
        columns = [*columns, CHANGE_COLUMN]
    try:
        index = RowIndex.from_bytes(await resources.storage.read_range(result.row_index_key, 0))
        total = index.rows
        first = min(position.first, total)
        end = min(first + limit, position.end if position.end is not None else total, total)
        rows = await read_page(
            resources.storage,
            result.storage_key,
            job.format,
            index,
            columns,
            first,
            end - first,
            csv_separators(job),
        )
    except FileNotFoundError as exc:  # removed between the check and now
        raise Gone(
            "The file of this report is no longer available; run it again.",
            code="job-file-missing",
        ) from exc
    except (ValueError, KeyError, UnicodeDecodeError) as exc:  # not what this type writes now
        raise Conflict(
            "This file's rows no longer match its report type's columns; run the report again.",
            code="job-rows-unavailable",
        ) from exc
    job_key = str(job.id)
    previous = None
    if first > 0:
        previous = rows_cursor(job_key, max(0, first - limit), first)
    page = RowsPage(
        job_id=job_key,
        format=job.format,
        # Labels as the file's header states them, in the job's locale.
        columns=[ColumnOut(**column_document(c)) for c in localised(columns, job.locale)],
        rows=rows,
        first_row=first,
        row_count=total,
        next_cursor=rows_cursor(job_key, end) if end < total else None,
        previous_cursor=previous,
    )
    return page, job


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "READABLE_FORMATS", "job_rows", "read_page"]
