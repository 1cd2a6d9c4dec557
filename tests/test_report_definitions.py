"""What a manager reads in a report's files, for every report type and shape: every figure shown
has a definition, the same as the metadata API's for that shape; no id and no lookup code in PDF
or Excel; numbers are numbers and rates carry at most the precision they show; department-summary's
rates divide its shown figures; the Parameters block names what the ids stand for; the e-mail
states the definitions of the figures it shows (spec §5.2)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import openpyxl
from bson import ObjectId
from openpyxl.worksheet.worksheet import Worksheet
from pypdf import PdfReader

from app.lookups import validation
from app.reports.deliveries.email import build_message
from app.reports.deliveries.models import ReportDelivery
from app.reports.types import REPORT_TYPES
from app.reports.types.figures import rate
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.tokens import TokenFactory
from tests.reports_fixture import Dataset, build_dataset

JOBS = "/api/v1/reports/jobs"
TYPES_URL = "/api/v1/reports/metadata/report-types"
MARCH = {"preset": "custom", "from": "2026-03-01", "to": "2026-03-31"}
Q1 = {"preset": "custom", "from": "2026-01-01", "to": "2026-03-31"}
NUMERIC = {"integer", "number", "percent"}
OBJECT_ID = re.compile(r"\b[0-9a-f]{24}\b")
# Categories whose codes a file could leak, the quiz ids (their titles are what people read).
CODE_CATEGORIES = (
    "enrollment-status",
    "compliance-state",
    "learning-event-type",
    "course-category",
)
QUIZ_IDS = ("q-sec-1", "q-py-1")

# (name, report type, parameters: "$name" stands for the dataset member's id)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "progress",
        "learner-progress",
        {"dateRange": MARCH, "departmentIds": ["$eng"], "courseIds": ["$sec", "$py"]},
    ),
    ("courses", "course-completion", {"dateRange": Q1}),
    ("tree", "department-summary", {"dateRange": MARCH}),
    (
        "flat",
        "department-summary",
        {"dateRange": MARCH, "departmentIds": ["$eng"], "includeSubDepartments": False},
    ),
    # From a Wednesday: the first week began on Monday 03-02.
    (
        "activity",
        "learning-activity",
        {
            "dateRange": {"preset": "custom", "from": "2026-03-04", "to": "2026-03-31"},
            "granularity": "week",
        },
    ),
    ("quizzes", "assessment-results", {"dateRange": MARCH}),
    ("by-course", "assessment-results", {"dateRange": Q1, "groupBy": "course"}),
    ("compliance", "compliance-status", {"asOfDate": "2026-03-20"}),
]


@dataclass
class Workbook:
    header: list[str]
    rows: list[tuple[Any, ...]]
    data: Worksheet
    sections: dict[str, list[tuple[Any, Any]]]  # Parameters sheet: section -> (label, value)


def _workbook(content: bytes) -> Workbook:
    book = openpyxl.load_workbook(io.BytesIO(content))
    data = book["Data"]
    header = [str(c.value) for c in data[1]]
    # The data rows: those under the autofilter (the totals row follows them).
    last = int(str(data.auto_filter.ref).split(":")[1].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    rows = [tuple(r) for r in data.iter_rows(min_row=2, max_row=last, values_only=True)]
    sections: dict[str, list[tuple[Any, Any]]] = {"": []}
    current = ""
    for a, b in book["Parameters"].iter_rows(min_col=1, max_col=2, values_only=True):
        if a in ("Parameters", "Summary", "Definitions") and b in ("", None):
            current = str(a)
            sections[current] = []
        elif a is not None:
            sections[current].append((a, b))
    return Workbook(header, rows, data, sections)


def _pdf_text(content: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return _flat(text)


def _flat(text: str) -> str:
    """Text with its line breaks, wrap points and ligatures undone, for comparing."""
    return " ".join(unicodedata.normalize("NFKC", text).replace("\u200b", "").split())


def _ids(data: Dataset, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return str(getattr(data, value[1:]).id)
    if isinstance(value, list):
        return [_ids(data, v) for v in value]
    if isinstance(value, dict):
        return {k: _ids(data, v) for k, v in value.items()}
    return value


def _mode(detail: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The metadata's shape for these parameters (an omitted one takes the default shape's)."""
    default = detail["modes"][0]["parameters"]
    for mode in detail["modes"]:
        if all(params.get(k, default.get(k)) == v for k, v in mode["parameters"].items()):
            return dict(mode)
    raise AssertionError(f"no shape for {params}")


def _codes() -> set[str]:
    codes = {c for category in CODE_CATEGORIES for c in validation.labels(category)}
    return codes | set(REPORT_TYPES) | set(QUIZ_IDS)


def _hyphenated(codes: set[str]) -> re.Pattern[str]:
    words = sorted((c for c in codes if "-" in c), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, words)) + r")(?![\w-])")


async def test_every_file_for_people_defines_its_figures_and_shows_no_code(
    resources: Resources, client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    data = await build_dataset()
    ann = await f.user("Ann Admin", dept=data.eng, roles=["admin"], email="ann@example.test")
    headers = auth("admin", sub=str(ann.id), name="Ann Admin")
    jobs: dict[tuple[str, str], str] = {}
    for name, key, params in CASES:
        for fmt in ("xlsx", "pdf", "csv"):
            body: dict[str, Any] = {
                "reportType": key,
                "format": fmt,
                "parameters": _ids(data, params),
            }
            if fmt == "xlsx":
                body["notify"] = {"email": True}
            created = await client.post(JOBS, json=body, headers=headers)
            assert created.status_code == 202, created.text
            jobs[(name, fmt)] = created.json()["id"]
        await run_worker(timeout=120)  # a caller has at most five jobs queued at once

    async def download(name: str, fmt: str) -> bytes:
        job_id = jobs[(name, fmt)]
        response = await client.get(f"{JOBS}/{job_id}/download", headers=headers)
        assert response.status_code == 200, (name, fmt, response.text)
        return response.content

    codes = _codes()
    hyphenated = _hyphenated(codes)
    object_ids = {str(d.id) for d in (data.eng, data.plat, data.sales, data.sec, data.py)}
    for name, key, params in CASES:
        detail = (await client.get(f"{TYPES_URL}/{key}", headers=headers)).json()
        defined = {
            (item["label"], item["description"])
            for mode in detail["modes"]
            for item in [*mode["columns"], *mode["summary"]]
        }
        mode = _mode(detail, params)
        types = {c["label"]: c["type"] for c in mode["columns"]}
        summary_types = {s["label"]: s["type"] for s in mode["summary"]}
        book = _workbook(await download(name, "xlsx"))
        pdf = _pdf_text(await download(name, "pdf"))

        # Every definition stated is the metadata's, and the PDF states the same ones (but for
        # department-summary's Level, a column Excel shows and the PDF does not).
        definitions = dict(book.sections["Definitions"])
        assert len(definitions) == len(book.sections["Definitions"]), name  # one per label
        assert set(definitions.items()) <= defined, name
        for label, text in definitions.items():
            if label == "Level":
                assert "Level" in book.header and _flat(f"{label} {text}") not in pdf
                continue
            assert _flat(f"{label} {text}") in pdf, (name, label)
        # Every figure shown is defined: the summary's, and every figure or flag column.
        for label, _ in book.sections["Summary"]:
            assert label in definitions, (name, label)
        for label in book.header:
            if types[label] in NUMERIC | {"boolean"}:
                assert label in definitions, (name, label)
        if name == "flat":  # a flat department list speaks of no subtree
            for text in definitions.values():
                assert not re.search(r"subtree|\brolls? up|\brolled up|under it", text), text

        # No id and no code: every cell of both sheets, every line of the PDF.
        sheets = [*book.rows, *[(a, b) for s in book.sections.values() for a, b in s]]
        for cell in (c for row in sheets for c in row if isinstance(c, str)):
            assert cell not in codes and not hyphenated.search(cell), (name, cell)
            assert not OBJECT_ID.search(cell), (name, cell)
        assert not hyphenated.search(pdf), (name, hyphenated.search(pdf))
        assert not OBJECT_ID.search(pdf) and not any(i in pdf for i in object_ids), name

        # Numbers are numbers, rates at most the precision they show, flags Yes / No, headers
        # aligned like their column.
        for c, label in enumerate(book.header):
            kind = types[label]
            values = [row[c] for row in book.rows]
            if kind in NUMERIC:
                assert all(v is None or isinstance(v, int | float) for v in values), label
            if kind == "percent":
                assert all(v is None or round(v, 3) == v for v in values), label
                assert book.data.cell(2, c + 1).number_format == "0.0%"
            if kind == "boolean":
                assert set(values) <= {"Yes", "No", None}, (name, label, values)
            right = book.data.cell(1, c + 1).alignment.horizontal == "right"
            assert right == (kind in NUMERIC | {"date", "datetime"}), (name, label)
        for label, value in book.sections["Summary"]:
            if summary_types[label] in NUMERIC and value != "—":
                assert isinstance(value, int | float), (name, label, value)
            if summary_types[label] == "percent" and isinstance(value, float):
                assert round(value, 3) == value, (name, label, value)
        assert dict(book.sections[""])["Report type"] == detail["name"]
        assert "Include sub-departments" in dict(book.sections["Parameters"])

        if key == "department-summary":
            _check_rates_divide(book)
        await _check_email(resources, jobs[(name, "xlsx")], defined, book)
        await _check_case(name, book, pdf, await download(name, "csv"))


def _check_rates_divide(book: Workbook) -> None:
    """Each row's and the summary's completion rate is its shown completed ÷ (enrolled −
    withdrawn)."""
    at = {label: i for i, label in enumerate(book.header)}
    enrolled, withdrawn = at["Enrolled in range"], at["Withdrawn (of enrolled)"]
    completed, shown = at["Completed (of enrolled)"], at["Completion rate"]
    for row in book.rows:
        expected = rate(row[completed], row[enrolled] - row[withdrawn])
        assert row[shown] == (None if expected is None else round(expected / 100, 3)), row
    summary = dict(book.sections["Summary"])
    expected = rate(
        summary["Completed (of enrolled)"],
        summary["Enrolled in range"] - summary["Withdrawn (of enrolled)"],
    )
    assert summary["Completion rate"] == round((expected or 0) / 100, 3)


async def _check_email(
    resources: Resources, job_id: str, defined: set[tuple[str, str]], book: Workbook
) -> None:
    """The e-mail quotes the summary figures and states their definitions, the metadata's."""
    [delivery] = await ReportDelivery.find({"job_id": ObjectId(job_id)}).to_list()
    message = build_message(resources.settings, delivery, link="https://x.test/l", attachment=None)
    text = str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    shown, meaning = text.split("What these figures mean:")
    figures = delivery.content.figures
    assert [f.label for f in figures] == [label for label, _ in book.sections["Summary"]]
    for figure in figures:
        assert f"{figure.label}: {figure.value}" in shown
        assert (figure.label, figure.definition) in defined
        assert f"{figure.label}: {figure.definition}" in meaning


async def _check_case(name: str, book: Workbook, pdf: str, csv_bytes: bytes) -> None:
    """What each case shows besides the rules every file follows."""
    params = dict(book.sections["Parameters"])
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"))))
    if name == "progress":  # names, not ids; whether sub-departments count
        assert params["Departments"] == "Engineering"
        assert params["Courses"] == "Python (PY201), Security Basics (SEC101)"
        assert params["Include sub-departments"] == "Yes"
        assert "Python (PY201), Security Basics (SEC101)" in pdf
        at = book.header.index("Status")
        assert {r[at] for r in book.rows} <= {"Completed", "In progress", "Enrolled", "Withdrawn"}
    if name == "courses":
        at = book.header.index("Category")
        assert {r[at] for r in book.rows} == {"Compliance", "Engineering", "Sales"}
        assert rows[1][2] in ("compliance", "engineering", "sales")  # CSV keeps the codes
    if name == "activity":  # the first week, begun on Monday 03-02, shown from the range's start
        at = book.header.index("Period start")
        assert book.rows[0][at] == datetime(2026, 3, 4)
        assert "2026-03-02" not in pdf and "2026-03-04" in pdf
        assert rows[1][0] == "2026-03-02"  # CSV: the ISO week's Monday, as the spec says
        assert dict(book.sections["Summary"])["Most frequent event type"] == "Quiz submitted (6)"
    if name == "quizzes":  # titles for people, ids in CSV
        at = book.header.index("Quiz")
        assert {r[at] for r in book.rows} == {"Security Basics: final quiz", "Python: final quiz"}
        assert "Security Basics: final quiz" in pdf
        assert {r[5] for r in rows[1:]} == {"q-sec-1", "q-py-1"}
    if name == "compliance":
        summary = dict(book.sections["Summary"])
        judged = summary["Compliant"] + summary["Completed late"] + summary["Overdue"]
        assert summary["Compliance rate"] == round(summary["Compliant"] / judged, 3)
    if name == "flat":
        assert params["Include sub-departments"] == "No"
