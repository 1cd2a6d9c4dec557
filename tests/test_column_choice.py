"""`columns: [key, ...]`: a report with the columns a user chose, in the order chosen, in every
format and in the preview; the same values as the whole report's columns; unknown or repeated
keys named in one 422; templates and schedules carry the choice into their jobs."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from typing import Any

import httpx
import openpyxl
import pytest

from app.reports.formats import FORMATS
from app.reports.reading.query import Row
from app.reports.rendering.base import Column, ColumnType
from app.reports.rendering.choice import ColumnChoice
from app.reports.rendering.present import Presentation
from app.reports.types import REPORT_TYPES, get_report_type
from app.runtime.resources import Resources
from tests.helpers.cells import csv_text
from tests.helpers.tokens import TokenFactory
from tests.reports_fixture import NOW, build_dataset
from tests.test_previews import JOBS, MARCH, PREVIEW, REQUESTS, body
from tests.test_report_types import ADMIN

BASE = "/api/v1/reports"
TEMPLATES = f"{BASE}/templates"
SCHEDULES = f"{BASE}/schedules"

# Per request of `REQUESTS`: a reordered subset, and what the job resolves it to (a grouping
# type's group key put first when left out).
CHOICES: list[tuple[list[str], list[str]]] = [
    (
        ["status", "courseCode", "learnerName", "score"],
        ["status", "courseCode", "learnerName", "score"],
    ),
    (
        ["completionRate", "courseTitle", "enrolled"],
        ["courseCode", "completionRate", "courseTitle", "enrolled"],
    ),
    (
        ["completionRate", "departmentName", "enrollments", "level"],
        ["completionRate", "departmentName", "enrollments", "level"],
    ),
    (["uniqueLearners", "events"], ["periodStart", "eventType", "uniqueLearners", "events"]),
    (["passed", "score", "learnerName"], ["passed", "score", "learnerName"]),
    (["passRate", "attempts"], ["courseCode", "passRate", "attempts"]),
    (["complianceState", "learnerName", "dueAt"], ["complianceState", "learnerName", "dueAt"]),
]


def _csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


async def _download(client: httpx.AsyncClient, job_id: str, headers: dict[str, str]) -> bytes:
    response = await client.get(f"{JOBS}/{job_id}/download", headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def _labels(report_type: str, parameters: dict[str, Any]) -> dict[str, str]:
    definition = REPORT_TYPES[report_type]
    mode = next(
        (
            m
            for m in definition.modes()
            if all(parameters.get(k) == v for k, v in m.parameters.items())
        ),
        definition.modes()[0],
    )
    return {c.key: c.label for c in mode.columns}


def _people(keys: list[str], report_type: str, kept: frozenset[str] = frozenset()) -> list[str]:
    """The chosen keys a file for people shows (machine-only columns left out, but those the
    format keeps: Excel's department tree columns)."""
    csv_only = {c.key for m in REPORT_TYPES[report_type].modes() for c in m.columns if c.csv_only}
    return [k for k in keys if k not in csv_only - kept]


def _xlsx_header(content: bytes, labels: list[str]) -> list[Any]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).worksheets[0]
    for row in sheet.iter_rows(values_only=True):
        cells = [c for c in row if c is not None]
        if cells and cells[0] == labels[0]:
            return cells
    raise AssertionError(f"no header row starting with {labels[0]!r}")


def _pdf_first_page(content: bytes) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", "-f", "1", "-l", "1", "-", "-"],
        input=content,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode()


async def test_a_reordered_subset_in_every_format_and_the_preview_for_every_type(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    await build_dataset()
    headers = auth("admin")
    for (report_type, parameters), (asked, resolved) in zip(REQUESTS, CHOICES, strict=True):
        made: dict[str, str] = {}
        for name, fmt, columns in (
            ("whole", "csv", None),
            ("csv", "csv", asked),
            ("json", "json", asked),
            ("xlsx", "xlsx", asked),
            ("pdf", "pdf", asked),
        ):
            request = body(report_type, parameters, fmt)
            if columns is not None:
                request["columns"] = columns
            created = await client.post(JOBS, json=request, headers=headers)
            assert created.status_code == 202, created.text
            job = created.json()
            if columns is not None:
                assert job["columns"] == resolved, report_type
            else:  # the resolved choice of a request without one: every column, in order
                assert job["columns"] == list(_labels(report_type, parameters)), report_type
            made[name] = job["id"]
        await run_worker(timeout=120)  # five jobs at a time: the caller's quota
        case = (report_type, parameters)
        labels = _labels(report_type, parameters)
        whole = _csv(await _download(client, made["whole"], headers))
        chosen = _csv(await _download(client, made["csv"], headers))
        assert chosen[0] == [labels[k] for k in resolved], case
        keys = list(labels)
        at = [keys.index(k) for k in resolved]
        # The same rows, in the same order, each cut down to the chosen cells.
        assert chosen[1:] == [[row[i] for i in at] for row in whole[1:]], case
        assert len(chosen) > 1, case  # the fixture has rows for every request

        lines = (await _download(client, made["json"], headers)).decode().splitlines()
        header = json.loads(lines[0])
        assert [c["key"] for c in header["columns"]] == resolved, case
        assert [list(json.loads(line)) for line in lines[1:]] == [resolved] * (len(lines) - 1)

        for fmt in ("csv", "json"):  # a job's rows read back as JSON: its columns, its order
            rows = await client.get(
                f"{JOBS}/{made[fmt]}/rows", params={"limit": 1000}, headers=headers
            )
            assert rows.status_code == 200, rows.text
            assert [c["key"] for c in rows.json()["columns"]] == resolved, case
            assert [[csv_text(r[k]) for k in resolved] for r in rows.json()["rows"]] == chosen[1:]

        in_excel = [labels[k] for k in _people(resolved, report_type, FORMATS["xlsx"].kept_columns)]
        sheet = _xlsx_header(await _download(client, made["xlsx"], headers), in_excel)
        assert sheet == in_excel, case
        shown = [labels[k] for k in _people(resolved, report_type)]

        text = _pdf_first_page(await _download(client, made["pdf"], headers))
        # Every chosen label on the table's header, left to right in the chosen order (a long
        # label may wrap: its first word is on the header line).
        firsts = [label.split()[0] for label in shown]
        header_line = next(
            (line for line in text.splitlines() if all(w in line for w in firsts)), ""
        )
        assert _in_order(header_line, firsts), (case, text)

        preview = await client.post(
            PREVIEW,
            params={"limit": 500},
            json={**body(report_type, parameters), "columns": asked},
            headers=headers,
        )
        assert preview.status_code == 200, preview.text
        page = preview.json()
        assert [c["key"] for c in page["columns"]] == resolved, case
        assert [list(r) for r in page["rows"]] == [resolved] * len(page["rows"])
        assert [[csv_text(r[k]) for k in resolved] for r in page["rows"]] == chosen[1:], case


def _in_order(line: str, words: list[str]) -> bool:
    at = 0
    for word in words:
        found = line.find(word, at)
        if found < 0:
            return False
        at = found + len(word)
    return True


async def test_unknown_and_repeated_columns_are_one_422_naming_each(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    headers = auth("admin")
    request = {
        **body("course-completion", {"dateRange": MARCH}),
        "columns": ["courseTitle", "nope", "courseTitle", "enrolled", "learnerName"],
    }
    for url in (JOBS, PREVIEW, TEMPLATES):
        sent = {**request, "name": "Chosen"} if url == TEMPLATES else request
        response = await client.post(url, json=sent, headers=headers)
        assert response.status_code == 422, (url, response.text)
        errors = {e["field"]: e for e in response.json()["errors"]}
        assert set(errors) == {"body.columns[1]", "body.columns[2]", "body.columns[4]"}, url
        assert errors["body.columns[1]"]["code"] == "column-unknown"
        assert "'nope'" in errors["body.columns[1]"]["message"]
        assert "courseCode" in errors["body.columns[1]"]["allowed"]
        assert errors["body.columns[2]"]["code"] == "column-repeated"
        assert errors["body.columns[4]"]["code"] == "column-unknown"
    # A key of another shape of the same type is unknown in this one.
    grouped = {
        **body("assessment-results", {"dateRange": MARCH, "groupBy": "course"}),
        "columns": ["passed"],
    }
    response = await client.post(JOBS, json=grouped, headers=headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.columns[0]"]
    # Bad parameters and a bad column are named together.
    both = {**body("course-completion", {"dateRange": "never"}), "columns": ["nope"]}
    response = await client.post(JOBS, json=both, headers=headers)
    fields = {e["field"] for e in response.json()["errors"]}
    assert "body.columns[0]" in fields and any("dateRange" in f for f in fields)
    empty = {**body("course-completion", {"dateRange": MARCH}), "columns": []}
    response = await client.post(JOBS, json=empty, headers=headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.columns"]


async def test_templates_and_schedules_carry_their_columns_into_their_jobs(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    await build_dataset()
    headers = auth("admin")
    template = await client.post(
        TEMPLATES,
        json={
            **body("course-completion", {"dateRange": MARCH}),
            "name": "Rates",
            "columns": ["completionRate", "courseTitle"],
        },
        headers=headers,
    )
    assert template.status_code == 201, template.text
    saved = template.json()
    assert saved["columns"] == ["completionRate", "courseTitle"]
    template_id = saved["id"]

    run = await client.post(f"{TEMPLATES}/{template_id}/run", headers=headers)
    assert run.status_code == 202, run.text
    assert run.json()["columns"] == ["courseCode", "completionRate", "courseTitle"]
    via_jobs = await client.post(
        JOBS, json={"templateId": template_id, "columns": ["enrolled"]}, headers=headers
    )
    assert via_jobs.json()["columns"] == ["courseCode", "enrolled"]  # the run's own choice
    # A retry makes the same file: the job's resolved columns go with it.
    cancelled = await client.post(f"{JOBS}/{via_jobs.json()['id']}/cancel", headers=headers)
    assert cancelled.json()["status"] == "cancelled", cancelled.text
    retried = await client.post(f"{JOBS}/{via_jobs.json()['id']}/retry", headers=headers)
    assert retried.status_code == 202, retried.text
    assert retried.json()["columns"] == ["courseCode", "enrolled"]
    await run_worker()
    rows = _csv(await _download(client, run.json()["id"], headers))
    assert rows[0] == ["Course code", "Completion rate", "Course"]

    # A change of the choice is a new version, which keeps it.
    changed = await client.patch(
        f"{TEMPLATES}/{template_id}", json={"columns": ["enrolled", "completed"]}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    versions = (await client.get(f"{TEMPLATES}/{template_id}/versions", headers=headers)).json()
    newest = versions["items"][0]
    assert newest["columns"] == ["enrolled", "completed"] and "columns" in newest["changedFields"]
    bad = await client.patch(f"{TEMPLATES}/{template_id}", json={"columns": ["x"]}, headers=headers)
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["body.columns[0]"]

    timing = {"frequency": "daily", "timeOfDay": "06:00", "timezone": "UTC"}
    follows = await client.post(
        SCHEDULES,
        json={"name": "Follows", "templateId": template_id, **timing},
        headers=headers,
    )
    assert follows.status_code == 201, follows.text
    own = await client.post(
        SCHEDULES,
        json={
            "name": "Own",
            "templateId": template_id,
            "columns": ["failed", "courseCode"],
            **timing,
        },
        headers=headers,
    )
    assert own.status_code == 201, own.text
    assert own.json()["columns"] == ["failed", "courseCode"]
    pinned = await client.post(
        SCHEDULES,
        json={"name": "Pinned", "templateId": template_id, "templateVersion": 1, **timing},
        headers=headers,
    )
    assert pinned.status_code == 201, pinned.text
    inline = await client.post(
        SCHEDULES,
        json={
            **body("learner-progress", {"dateRange": MARCH}),
            "name": "Inline",
            "columns": ["learnerName", "status"],
            **timing,
        },
        headers=headers,
    )
    assert inline.status_code == 201, inline.text
    wrong = await client.post(
        SCHEDULES,
        json={
            **body("learner-progress", {"dateRange": MARCH}),
            "name": "W",
            "columns": ["q"],
            **timing,
        },
        headers=headers,
    )
    assert wrong.status_code == 422
    assert [e["field"] for e in wrong.json()["errors"]] == ["body.columns[0]"]

    expected = {
        follows.json()["id"]: ["courseCode", "enrolled", "completed"],
        own.json()["id"]: ["failed", "courseCode"],
        pinned.json()["id"]: ["courseCode", "completionRate", "courseTitle"],
        inline.json()["id"]: ["learnerName", "status"],
    }
    for schedule_id, columns in expected.items():
        job = await client.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=headers)
        assert job.status_code == 202, job.text
        assert job.json()["columns"] == columns, schedule_id


async def test_the_metadata_lists_each_types_columns_with_defaults_and_group_keys(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    headers = auth("admin")
    detail = (
        await client.get(f"{BASE}/metadata/report-types/course-completion", headers=headers)
    ).json()
    first = detail["columns"][0]
    assert first["key"] == "courseCode" and first["groupKey"] is True
    assert all(c["defaultVisible"] for c in detail["columns"])
    rate = next(c for c in detail["columns"] if c["key"] == "completionRate")
    assert rate["definition"] == rate["description"] and rate["definition"]
    assessment = (
        await client.get(f"{BASE}/metadata/report-types/assessment-results", headers=headers)
    ).json()
    keys = [[c["key"] for c in m["columns"] if c["groupKey"]] for m in assessment["modes"]]
    assert keys == [[], ["courseCode"]]  # grouped by course only in its grouped shape
    tree = (
        await client.get(f"{BASE}/metadata/report-types/department-summary", headers=headers)
    ).json()
    level = next(c for c in tree["columns"] if c["key"] == "level")
    assert level["csvOnly"] is True


@pytest.mark.parametrize("fmt", ["csv"])
async def test_a_request_without_columns_makes_the_same_file_as_before(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, fmt: str
) -> None:
    await build_dataset()
    headers = auth("admin")
    request = body("learner-progress", {"dateRange": MARCH}, fmt)
    plain = await client.post(JOBS, json=request, headers=headers)
    every = await client.post(
        JOBS, json={**request, "columns": plain.json()["columns"]}, headers=headers
    )
    await run_worker()
    first = await _download(client, plain.json()["id"], headers)
    second = await _download(client, every.json()["id"], headers)
    assert _csv(first) == _csv(second)
    assert _csv(first)[0][:2] == ["Learner", "Email"]


async def _rows(key: str, params: dict[str, Any], columns: list[str] | None) -> list[Row]:
    definition = get_report_type(key)
    resolved = definition.resolve(definition.parse(params), ADMIN, NOW)
    rows: list[Row] = []
    async for batch in definition.fetch(resolved.parameters, resolved.scope, 50, columns):
        rows.extend(batch)
    return rows


@pytest.mark.parametrize("date_field", ["enrolledAt", "lastActivityAt"])
async def test_the_read_skips_the_fields_only_columns_left_out_need(
    resources: Resources, date_field: str
) -> None:
    """learner-progress reads neither time spent nor progress when they are not chosen (their
    cells come empty, the chosen ones as in the whole report); the date field it filters on
    is read whatever the choice."""
    await build_dataset()
    params = {"dateRange": MARCH, "dateField": date_field}
    keys = [c.key for c in get_report_type("learner-progress").columns]
    chosen = ["learnerName", "courseCode", "status", "score", "overdue"]
    whole = await _rows("learner-progress", params, None)
    narrow = await _rows("learner-progress", params, chosen)
    assert len(narrow) == len(whole) > 0
    at = [keys.index(k) for k in chosen]
    assert [[r[i] for i in at] for r in narrow] == [[r[i] for i in at] for r in whole]
    spent, progress = keys.index("timeSpentMinutes"), keys.index("progressPercent")
    assert any(r[spent] is not None for r in whole)
    assert all(r[spent] is None and r[progress] is None for r in narrow)
    field = keys.index(date_field)
    assert [r[field] for r in narrow] == [r[field] for r in whole]  # what the range walks


def test_a_choice_cuts_rows_and_leaves_a_whole_choice_alone() -> None:
    columns = [Column("a", "A"), Column("b", "B", ColumnType.BOOLEAN), Column("c", "C")]
    choice = ColumnChoice(("c", "a"))
    assert choice.rows(columns, [(1, True, 3)]) == [(3, 1)]
    assert [c.key for c in choice.columns(columns)] == ["c", "a"]
    people = Presentation.of(columns, {}, for_people=True)
    narrowed = choice.narrow(columns, people)
    assert narrowed.rows([(1, True, 3)]) == [(3, 1)]  # b's Yes / No not made at all
    assert not narrowed.convert
    whole = ColumnChoice(("a", "b", "c"))
    assert whole.narrow(columns, people) is people  # exactly today's presentation
