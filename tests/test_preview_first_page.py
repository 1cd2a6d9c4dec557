"""A large report's first page found without its whole read (`reading/first_rows.py`,
`previews/first_page.py`): the rows are exactly the whole read's first rows, in its order,
through every case the order has — departments and learners whose names tie (by case and
accent), learners whose enrollments sit in another department, enrollments without a
department, small and large department groups, filters and scopes — and a preview of a large
report answers that page with `summaryIncluded: false`, equal to its CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from beanie import PydanticObjectId

from app.main import create_app
from app.platform.models import Course, Department, Enrollment, User
from app.reports.previews import first_page as first_page_module
from app.reports.reading.facts import decoding
from app.reports.reading.first_rows import LEARNERS, LearnerOrder, first_rows
from app.reports.reading.preference import report_reads
from app.reports.reading.query import Row
from app.reports.types import get_report_type
from app.runtime.resources import Resources
from app.security import DataScope
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.cells import csv_text
from tests.helpers.tokens import TokenFactory

ADMIN = DataScope(description="all data (admin)")
RANGE = {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}
# Department names: two pairs tie under the name order (case, accent), one sorts first.
DEPARTMENTS = ["Sales", "sales", "Zeta", "Études", "Etudes", "Accounts"]
# Learner names with ties (case, accents) and one without a name.
NAMES = ["Anna Schmidt", "anna schmidt", "Émile Roux", "Emile Roux", "Bo", "Zoë", "Zoe", "Ada"]


async def _dataset() -> tuple[list[Course], list[Department]]:
    """~300 enrollments: every learner in 2–3 courses; one in ten in another department than
    their learner's, one in fifteen without a department."""
    departments = [await f.department(name, code=f"D{i}") for i, name in enumerate(DEPARTMENTS)]
    courses = [await f.course(f"C-{c}") for c in ("b", "A", "a", "c")]
    users = []
    for i in range(120):
        home = departments[i % len(departments)]
        users.append(
            {
                "_id": PydanticObjectId(),
                "name": None
                if i == 7
                else f"{NAMES[i % len(NAMES)]}{'' if i < 60 else ' ' + str(i % 9)}",
                "email": f"learner{i}@example.test",
                "department_id": home.id,
                "roles": ["learner"],
                "status": "active",
            }
        )
    await User.get_pymongo_collection().insert_many(users)
    enrollments = []
    n = 0
    for i, user in enumerate(users):
        for course in courses[: 2 + i % 2]:
            n += 1
            own = user["department_id"]
            dept = departments[(i + 1) % len(departments)].id if n % 10 == 0 else own
            enrollments.append(
                {
                    "user_id": user["_id"],
                    "course_id": course.id,
                    "department_id": None if n % 15 == 0 else dept,
                    "status": ("enrolled", "in-progress", "completed")[n % 3],
                    "enrolled_at": f.dt(2026, 2, 1, 8) + timedelta(hours=n),
                    "progress_percent": float(n % 100),
                    "time_spent_minutes": n,
                }
            )
    await Enrollment.get_pymongo_collection().insert_many(enrollments)
    return courses, departments


async def _both(
    params: Mapping[str, Any], scope: DataScope, need: int, **sizes: int
) -> tuple[list[Row], list[Row]]:
    """(the whole read's first `need` rows, the first rows found alone)."""
    definition = get_report_type("learner-progress")
    resolved = definition.resolve(definition.parse(dict(params)), scope, f.dt(2026, 12, 31, 12))
    stored = json.loads(json.dumps(resolved.parameters))
    whole: list[Row] = []
    async for batch in definition.fetch(stored, resolved.scope, 100):
        whole.extend(batch)
    typed = await definition.with_subtrees(definition.typed(stored))
    facts = (await definition.plan(typed, resolved.scope)).facts
    assert facts is not None
    collection = decoding(report_reads(definition.source.get_pymongo_collection()), facts)
    learners = LearnerOrder()  # read first: a small group's documents are then cut by it
    assert await learners.of(collection.database, 60) is not None
    alone = await first_rows(collection, facts, need, learners=learners, wait=60, **sizes)
    assert alone is not None
    return whole[:need], alone


@pytest.mark.parametrize(
    "sizes",
    [
        {"small_group": 1, "first_batch": 1},  # every group driven by learners, one at a time
        {"small_group": 1, "first_batch": 4},
        {"small_group": 40, "first_batch": 2},  # some groups read whole
        {},  # the defaults: every group here is small
    ],
)
async def test_the_first_rows_alone_are_the_whole_reads_first_rows(
    resources: Resources, sizes: dict[str, int]
) -> None:
    courses, departments = await _dataset()
    for need in (1, 9, 50, 400):
        whole, alone = await _both({"dateRange": RANGE}, ADMIN, need, **sizes)
        assert alone == whole, need
    assert len(whole) > 250  # the last `need` is past the end: every row, in order

    # Filtered by courses (server side) and by a status, and in a manager's scope.
    by_course = {"dateRange": RANGE, "courseIds": [str(courses[1].id)], "statuses": ["enrolled"]}
    whole, alone = await _both(by_course, ADMIN, 30, **sizes)
    assert alone == whole and whole
    manager = DataScope(
        description="manager",
        department_ids=frozenset({str(departments[0].id), str(departments[1].id)}),
    )
    whole, alone = await _both({"dateRange": RANGE}, manager, 60, **sizes)
    assert alone == whole and whole


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


async def test_a_large_preview_answers_its_first_pages_without_the_summary(
    resources: Resources, auth: TokenFactory, run_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _dataset()
    LEARNERS.forget()
    monkeypatch.setattr(first_page_module, "WHOLE_READ_ROWS", 100)  # "large" from 100 rows
    headers = auth("admin")
    request = {
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": RANGE},
    }
    app = create_app(resources.settings, resources=resources)
    async with app.router.lifespan_context(app), api_client(app) as client:
        job = await client.post("/api/v1/reports/jobs", json=request, headers=headers)
        assert job.status_code == 202, job.text
        await run_worker()
        download = await client.get(
            f"/api/v1/reports/jobs/{job.json()['id']}/download", headers=headers
        )
        header, *rows = _csv_rows(download.content)

        first = await client.post(
            "/api/v1/reports/preview", params={"limit": 40}, json=request, headers=headers
        )
        assert first.status_code == 200, first.text
        page = first.json()
        assert page["summaryIncluded"] is False
        assert page["summary"] == [] and page["totals"] is None and page["charts"] == []
        assert page["rowCount"] == len(rows) and page["rowCountExact"] is True
        keys = [c["key"] for c in page["columns"]]
        assert [c["label"] for c in page["columns"]] == header
        assert [[csv_text(r[k]) for k in keys] for r in page["rows"]] == rows[:40]

        second = await client.post(
            "/api/v1/reports/preview",
            params={"limit": 40, "cursor": page["nextCursor"]},
            json=request,
            headers=headers,
        )
        assert second.status_code == 200, second.text
        assert [[csv_text(r[k]) for k in keys] for r in second.json()["rows"]] == rows[40:80]

        # With a sort the page needs every row: the whole read, with its summary.
        sorted_page = await client.post(
            "/api/v1/reports/preview",
            params={"limit": 5, "sort": "-progressPercent"},
            json=request,
            headers=headers,
        )
        assert sorted_page.status_code == 200, sorted_page.text
        assert sorted_page.json()["summaryIncluded"] is True and sorted_page.json()["summary"]


async def test_without_the_learner_order_in_time_the_whole_read_decides(
    resources: Resources,
) -> None:
    await _dataset()
    definition = get_report_type("learner-progress")
    resolved = definition.resolve(
        definition.parse({"dateRange": RANGE}), ADMIN, f.dt(2026, 12, 31, 12)
    )
    stored = json.loads(json.dumps(resolved.parameters))
    facts = (await definition.plan(definition.typed(stored), resolved.scope)).facts
    assert facts is not None
    collection = decoding(report_reads(definition.source.get_pymongo_collection()), facts)
    learners = LearnerOrder()
    # Not read yet and no time to wait: no rows (the preview then reads the whole report).
    assert await first_rows(collection, facts, 5, learners=learners, small_group=1, wait=0) is None
    # The read goes on in its own task; once there, the next preview uses it.
    found = await first_rows(collection, facts, 5, learners=learners, small_group=1, wait=30)
    assert found is not None and len(found) == 5
    assert learners.order is not None and len(learners.order) == 120
