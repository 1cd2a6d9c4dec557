"""`POST /api/v1/reports/preview`: the rows, summary and row count of a report at once, equal to
the files of the same request; paged, sorted, bounded by its time budget, rate-limited and
audited."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from app.audit.models import AuditEvent
from app.config import Settings
from app.main import create_app
from app.reports.types import REPORT_TYPES
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.cells import csv_text
from tests.helpers.jobs import insert_enrollments
from tests.helpers.tokens import TokenFactory
from tests.reports_fixture import Dataset, build_dataset

BASE = "/api/v1/reports"
PREVIEW = f"{BASE}/preview"
JOBS = f"{BASE}/jobs"
MARCH = {"preset": "custom", "from": "2026-03-01", "to": "2026-03-31"}
TIMEZONE = "Europe/Berlin"

# Each report type's parameters over the fixture's March (assessment-results twice: per
# submission and grouped by course).
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("learner-progress", {"dateRange": MARCH}),
    ("course-completion", {"dateRange": MARCH}),
    ("department-summary", {"dateRange": MARCH}),
    ("learning-activity", {"dateRange": MARCH, "granularity": "week"}),
    ("assessment-results", {"dateRange": MARCH}),
    ("assessment-results", {"dateRange": MARCH, "groupBy": "course"}),
    ("compliance-status", {"asOfDate": "2026-03-20"}),
]


def body(report_type: str, parameters: dict[str, Any], fmt: str = "csv") -> dict[str, Any]:
    return {
        "reportType": report_type,
        "format": fmt,
        "parameters": {**parameters, "timezone": TIMEZONE},
    }


def callers(auth: TokenFactory, data: Dataset) -> dict[str, dict[str, str]]:
    """The four roles: the learner and the instructor are platform users (their scope is
    read from their documents), the manager heads Engineering (and so Platform)."""
    return {
        "admin": auth("admin"),
        "manager": auth("manager", departments=[data.id(data.eng)]),
        "instructor": auth("instructor", sub=data.id(data.ivy)),
        "learner": auth("learner", sub=data.id(data.alice), departments=[data.id(data.eng)]),
    }


async def _download(client: httpx.AsyncClient, job_id: str, headers: dict[str, str]) -> bytes:
    response = await client.get(f"{JOBS}/{job_id}/download", headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def _app(resources: Resources, **changes: Any) -> FastAPI:
    """An app on the session's servers with other settings (the services read them from the
    resources)."""
    settings = Settings.model_validate({**resources.settings.model_dump(), **changes})
    shared = Resources(
        settings=settings,
        database=resources.database,
        queue=resources.queue,
        storage=resources.storage,
    )
    return create_app(settings, resources=shared)


Case = tuple[str, str, dict[str, Any], dict[str, str], dict[str, str]]


async def _submit_all(client: httpx.AsyncClient, auth: TokenFactory, data: Dataset) -> list[Case]:
    """A CSV and a JSON Lines job of every request each role may run (a 403 preview for the
    others)."""
    cases: list[Case] = []
    for role, headers in callers(auth, data).items():
        for report_type, parameters in REQUESTS:
            request = body(report_type, parameters)
            if role not in [r.value for r in REPORT_TYPES[report_type].roles]:
                denied = await client.post(PREVIEW, json=request, headers=headers)
                assert denied.status_code == 403, (role, report_type, denied.text)
                continue
            jobs: dict[str, str] = {}
            for fmt in ("csv", "json"):
                created = await client.post(
                    JOBS, json=body(report_type, parameters, fmt), headers=headers
                )
                assert created.status_code == 202, created.text
                jobs[fmt] = created.json()["id"]
            cases.append((role, report_type, parameters, headers, jobs))
    return cases


async def test_the_preview_equals_the_files_of_the_same_request_for_every_type_and_role(
    resources: Resources, auth: TokenFactory, run_worker: Any
) -> None:
    data = await build_dataset()
    # Every job of a role at once: a quota that holds them.
    app = _app(resources, max_active_jobs_per_user=50)
    async with app.router.lifespan_context(app), api_client(app) as client:
        cases = await _submit_all(client, auth, data)
        await run_worker(timeout=240)
        for role, report_type, parameters, headers, jobs in cases:
            case = (role, report_type, parameters.get("groupBy"))
            response = await client.post(
                PREVIEW, params={"limit": 500}, json=body(report_type, parameters), headers=headers
            )
            assert response.status_code == 200, (case, response.text)
            preview = response.json()
            content = (await _download(client, jobs["csv"], headers)).decode()
            header, *rows = list(csv.reader(io.StringIO(content)))
            assert [c["label"] for c in preview["columns"]] == header, case
            keys = [c["key"] for c in preview["columns"]]
            assert [[csv_text(r[k]) for k in keys] for r in preview["rows"]] == rows, case
            assert preview["rowCount"] == len(rows) and preview["rowCountExact"] is True
            assert preview["nextCursor"] is None

            first, *lines = (await _download(client, jobs["json"], headers)).decode().splitlines()
            jsonl = json.loads(first)
            assert preview["summary"] == jsonl["summary"], case
            assert all(s["definition"] for s in preview["summary"]), case
            assert [json.loads(line) for line in lines] == preview["rows"], case
            assert jsonl["rowCount"] == preview["rowCount"]
            assert jsonl["columns"] == preview["columns"]
    assert len(cases) == 21  # admin and manager 7, instructor 6, learner 1
    seen = {(role, report_type) for role, report_type, *_ in cases}
    assert {t for _, t in seen} == set(REPORT_TYPES)
    assert {r for r, _ in seen} == {"admin", "manager", "instructor", "learner"}
    assert [t for r, t in seen if r == "learner"] == ["learner-progress"]


async def test_pages_follow_the_cursor_and_the_requested_sort(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    await build_dataset()
    headers = auth("admin")
    request = body("learner-progress", {"dateRange": MARCH})
    whole = (
        await client.post(PREVIEW, params={"limit": 500}, json=request, headers=headers)
    ).json()
    assert whole["rowCount"] == 7 and whole["sort"] == [] and whole["offset"] == 0
    names = [(r["departmentName"], r["learnerName"], r["courseCode"]) for r in whole["rows"]]
    assert names[0] == ("Engineering", "alice Adams", "PY201")

    for sort in (None, "-score", "score,-enrolledAt", "-learnerName"):
        params: dict[str, Any] = {"limit": 3, **({"sort": sort} if sort else {})}
        pages: list[dict[str, Any]] = []
        while True:
            page = await client.post(PREVIEW, params=params, json=request, headers=headers)
            assert page.status_code == 200, page.text
            pages.append(page.json())
            if not page.json()["nextCursor"]:
                break
            params["cursor"] = page.json()["nextCursor"]
        rows = [r for p in pages for r in p["rows"]]
        assert [p["offset"] for p in pages] == [0, 3, 6] and len(rows) == 7
        expected = list(whole["rows"])
        for part in reversed((sort or "").split(",") if sort else []):
            key = part.removeprefix("-")
            present = [r for r in expected if r[key] is not None]
            empty = [r for r in expected if r[key] is None]
            present.sort(
                key=lambda r: r[key].casefold() if isinstance(r[key], str) else r[key],
                reverse=part.startswith("-"),
            )
            # Empty cells first ascending, last descending; ties keep the report's order.
            expected = present + empty if part.startswith("-") else empty + present
        assert rows == expected, sort
        assert pages[0]["sort"] == ([s for s in sort.split(",")] if sort else [])

    wrong = await client.post(PREVIEW, params={"sort": "nope"}, json=request, headers=headers)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "sort"
    assert "learnerName" in wrong.json()["errors"][0]["allowed"]
    cursor = (await client.post(PREVIEW, params={"limit": 3}, json=request, headers=headers)).json()
    other = body("learner-progress", {"dateRange": MARCH, "statuses": ["completed"]})
    mixed = await client.post(
        PREVIEW, params={"limit": 3, "cursor": cursor["nextCursor"]}, json=other, headers=headers
    )
    assert mixed.status_code == 422 and mixed.json()["errors"][0]["field"] == "cursor"


async def test_a_template_previews_as_its_run_and_the_scope_applies(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    data = await build_dataset()
    manager = auth("manager", departments=[data.id(data.eng)])
    template = await client.post(
        f"{BASE}/templates",
        json={"name": "March", **body("learner-progress", {"dateRange": MARCH})},
        headers=manager,
    )
    assert template.status_code == 201, template.text
    by_template = await client.post(
        PREVIEW, json={"templateId": template.json()["id"], "format": "csv"}, headers=manager
    )
    direct = await client.post(
        PREVIEW, json=body("learner-progress", {"dateRange": MARCH}), headers=manager
    )
    assert by_template.status_code == 200, by_template.text
    assert by_template.json()["rows"] == direct.json()["rows"]
    assert {r["departmentName"] for r in direct.json()["rows"]} == {"Engineering", "Platform"}
    assert direct.json()["scope"]["departmentIds"]

    outside = await client.post(
        PREVIEW,
        json=body("learner-progress", {"dateRange": MARCH, "departmentIds": [data.id(data.sales)]}),
        headers=manager,
    )
    assert outside.status_code == 403 and outside.json()["code"] == "scope-exceeded"
    missing = await client.post(
        PREVIEW, json=body("learner-progress", {"dateRange": {"preset": "nope"}}), headers=manager
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"].startswith("parameters.dateRange")

    events = await AuditEvent.find({"action": "report.previewed", "outcome": "allowed"}).to_list()
    assert len(events) == 2
    assert events[0].details["reportType"] == "learner-progress"
    assert events[0].details["rowCount"] == 6 and events[0].scope
    denied = await AuditEvent.find({"action": "report.previewed", "outcome": "denied"}).to_list()
    assert len(denied) == 1


async def test_a_preview_over_its_budget_is_refused_with_an_estimate(
    resources: Resources, auth: TokenFactory
) -> None:
    dept = await f.department("Ops", code="OPS")
    course = await f.course("BIG1", title="Big")
    await insert_enrollments(course, dept, 6000, spread=timedelta(minutes=1))
    app = _app(resources, preview_budget_ms=100)
    request = body(
        "learner-progress",
        {"dateRange": {"preset": "custom", "from": "2026-02-01", "to": "2026-02-05"}},
    )
    async with app.router.lifespan_context(app), api_client(app) as client:
        response = await client.post(PREVIEW, json=request, headers=auth("admin"))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "preview-too-large"
    assert problem["budgetMs"] == 100
    # Counted slice by slice after the budget ran out: all 6,000, or as many as it got to,
    # extrapolated.
    assert problem["estimatedRows"] > 1000
    if problem["estimateExact"]:
        assert problem["estimatedRows"] == 6000
    assert problem["rowsRead"] < 6000
    assert problem["narrowBy"][:2] == ["parameters.dateRange", "parameters.departmentIds"]
    assert "parameters.statuses" in problem["narrowBy"]


async def test_previews_are_rate_limited_per_user(resources: Resources, auth: TokenFactory) -> None:
    app = _app(resources, preview_rate_per_minute=2)
    request = body("course-completion", {"dateRange": MARCH})
    one, other = auth("admin", sub="one"), auth("admin", sub="other")
    async with app.router.lifespan_context(app), api_client(app) as client:
        # Six calls: whichever minute they fall in, one window holds a third.
        answers = [await client.post(PREVIEW, json=request, headers=one) for _ in range(6)]
        refused = [a for a in answers if a.status_code == 429]
        assert refused and all(a.status_code in (200, 429) for a in answers)
        assert refused[0].json()["code"] == "preview-rate-exceeded"
        assert 1 <= int(refused[0].headers["retry-after"]) <= 60
        # Another user is counted apart.
        assert (await client.post(PREVIEW, json=request, headers=other)).status_code == 200
