"""A report type added by one module and one registry line runs end to end through the API.

`CourseList` below is that module: a parameters model, a resolved-parameters model, three
columns, a read of the real `courses` collection and a summary. The fixture registers it (the
one line), re-seeds the lookups as a start-up would, and takes it out again afterwards; jobs,
templates, schedules, lookups and metadata need no change to run it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import httpx
import openpyxl
import pytest
from pydantic import Field
from pypdf import PdfReader

from app.lookups import validation
from app.lookups.models import LookupValue
from app.lookups.seed import seed_lookups
from app.platform.models import Course
from app.reports.formats import FORMATS
from app.reports.types import (
    REPORT_TYPES,
    Column,
    Figure,
    Plan,
    ReportDefinition,
    ReportParameters,
    ResolvedParameters,
    Row,
    column,
    column_index,
    measure,
    register,
    unregister,
)
from app.runtime.resources import Resources
from app.security import DataScope
from tests import factories as f
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
KEY = "course-list"


class CourseListParameters(ReportParameters):
    mandatory_only: bool = Field(default=False, description="Only mandatory courses")


class CourseListResolved(ResolvedParameters):
    mandatory_only: bool = False


class CourseList(ReportDefinition[CourseListParameters, CourseListResolved]):
    key = KEY
    name = "Course list"
    description = "One row per course: code, title and whether it is mandatory."
    parameters_model = CourseListParameters
    resolved_model = CourseListResolved
    source = Course
    columns: ClassVar[list[Column]] = [
        column("courseCode", "Course code", "string"),
        column("courseTitle", "Course", "string"),
        column("isMandatory", "Mandatory", "boolean"),
    ]
    default_sort: ClassVar[list[str]] = ["courseCode"]
    option_labels: ClassVar[dict[str, str]] = {"mandatoryOnly": "Mandatory only"}

    def resolve_parameters(self, params: CourseListParameters, now: datetime) -> CourseListResolved:
        return CourseListResolved(
            **self.resolved_fields(params, now), mandatory_only=params.mandatory_only
        )

    def _match(self, resolved: CourseListResolved) -> dict[str, Any]:
        return {"is_mandatory": True} if resolved.mandatory_only else {}

    async def count_stages(
        self, resolved: CourseListResolved, scope: DataScope
    ) -> list[dict[str, Any]]:
        return [{"$match": self._match(resolved)}]

    async def plan(self, resolved: CourseListResolved, scope: DataScope) -> Plan:
        def to_row(doc: dict[str, Any]) -> Row:
            return (doc.get("code"), doc.get("title"), doc.get("is_mandatory"))

        return Plan([{"$match": self._match(resolved)}, {"$sort": {"code": 1, "_id": 1}}], to_row)

    def summary(self, resolved: CourseListResolved | None) -> CourseListSummary:
        return CourseListSummary()


class CourseListSummary:
    def __init__(self) -> None:
        self.courses = self.mandatory = 0

    def add(self, batch: Sequence[Row]) -> None:
        (at_mandatory,) = column_index(CourseList.columns, "isMandatory")
        for row in batch:
            self.courses += 1
            self.mandatory += bool(row[at_mandatory])

    def figures(self) -> list[Figure]:
        return [_COURSES.figure(self.courses), _MANDATORY.figure(self.mandatory)]


_COURSES = measure("courses", "Courses", "integer", "The report's rows: every course")
_MANDATORY = measure("mandatory", "Mandatory", "integer", "Of the courses, the mandatory ones")


@pytest.fixture
async def course_list(resources: Resources) -> AsyncIterator[CourseList]:
    definition = CourseList()
    register(definition)
    try:
        await seed_lookups()
        await validation.refresh(force=True)
        yield definition
    finally:
        unregister(KEY)
        await LookupValue.get_pymongo_collection().delete_many(
            {"category": "report-type", "code": KEY}
        )
        await validation.refresh(force=True)


@pytest.mark.parametrize("fmt", list(FORMATS))
async def test_an_added_report_type_runs_end_to_end_in_every_format(
    course_list: CourseList,
    client: httpx.AsyncClient,
    auth: TokenFactory,
    run_worker: Any,
    fmt: str,
) -> None:
    await f.course("SEC101", title="Security Basics", mandatory=True)
    await f.course("PY201", title="Python Basics")
    await f.course("NEG301", title="Negotiation", mandatory=True)
    headers = auth("admin")

    listed = (await client.get("/api/v1/reports/metadata/report-types", headers=headers)).json()
    assert KEY in [t["key"] for t in listed]

    body = {"reportType": KEY, "format": fmt, "parameters": {"mandatoryOnly": True}}
    created = await client.post(JOBS, json=body, headers=headers)
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["resolvedParameters"]["mandatoryOnly"] is True

    await run_worker()

    done = (await client.get(f"{JOBS}/{job['id']}", headers=headers)).json()
    assert done["status"] == "completed", done
    assert done["result"]["rowCount"] == 2
    assert done["result"]["fileName"].startswith(f"{KEY}-")

    response = await client.get(f"{JOBS}/{job['id']}/download", headers=headers)
    assert response.status_code == 200
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert ["Course code", "Course", "Mandatory"] in rows
        text = "\n".join(",".join(r) for r in rows)
    elif fmt == "json":
        lines = response.content.decode("utf-8").splitlines()
        assert json.loads(lines[0])["columns"][0]["key"] == "courseCode"
        text = "\n".join(lines[1:])
    elif fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
        sheet = book[book.sheetnames[0]]
        text = "\n".join(" ".join(str(c) for c in row) for row in sheet.iter_rows(values_only=True))
    else:
        reader = PdfReader(io.BytesIO(response.content))
        text = "\n".join(page.extract_text() for page in reader.pages)
        assert "Course list" in text
    assert "SEC101" in text and "NEG301" in text
    assert "PY201" not in text


async def test_the_added_report_type_is_gone_afterwards(resources: Resources) -> None:
    assert KEY not in REPORT_TYPES
    assert KEY not in validation.allowed_codes("report-type")
