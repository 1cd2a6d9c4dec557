"""Metadata API: what the frontend builds its report form from."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from app.lookups.models import LookupValue
from app.reports.types import REPORT_TYPES
from tests import factories
from tests.factories import dt

BASE = "/api/v1/reports/metadata"


async def test_report_types_are_filtered_by_role(client: httpx.AsyncClient, auth: Any) -> None:
    admin = await client.get(f"{BASE}/report-types", headers=auth("admin"))
    assert admin.status_code == 200
    keys = [t["key"] for t in admin.json()]
    assert keys == list(REPORT_TYPES)
    learner = await client.get(f"{BASE}/report-types", headers=auth("learner"))
    assert [t["key"] for t in learner.json()] == ["learner-progress"]
    instructor = {
        t["key"]
        for t in (await client.get(f"{BASE}/report-types", headers=auth("instructor"))).json()
    }
    assert "department-summary" not in instructor and "learner-progress" in instructor


async def test_one_report_type_has_schema_columns_formats_and_limits(
    client: httpx.AsyncClient, auth: Any
) -> None:
    response = await client.get(f"{BASE}/report-types/learner-progress", headers=auth("manager"))
    assert response.status_code == 200
    data = response.json()
    schema = data["parametersSchema"]
    assert schema["type"] == "object"
    assert {"dateRange", "timezone", "departmentIds", "statuses"} <= set(schema["properties"])
    assert schema.get("additionalProperties") is False
    columns = {c["key"]: c["type"] for c in data["columns"]}
    assert columns["learnerName"] == "string" and columns["progressPercent"] == "percent"
    assert data["defaultSort"]
    formats = {f["code"]: f for f in data["formats"]}
    assert set(formats) == {"csv", "xlsx", "pdf", "json"}
    assert formats["pdf"]["maxRows"] == 50_000 and formats["pdf"]["truncates"] is True
    assert formats["xlsx"]["contentType"].endswith("spreadsheetml.sheet")
    assert data["limits"]["maxRowsPerFormat"]["csv"] == 10_000_000

    # A column of lookup codes names its category, so a frontend knows where its labels are.
    lookups = {c["key"]: c["lookup"] for c in data["columns"]}
    assert lookups["status"] == "enrollment-status" and lookups["learnerName"] is None
    # One shape; its summary figures come with their definitions.
    assert [m["parameters"] for m in data["modes"]] == [{}]
    assert data["modes"][0]["columns"] == data["columns"]
    summary = {f["label"]: f for f in data["summary"]}
    assert summary["Completion rate"]["type"] == "percent"
    assert "withdrawn" in summary["Completion rate"]["description"]

    tree = await client.get(f"{BASE}/report-types/department-summary", headers=auth("manager"))
    modes = tree.json()["modes"]
    assert [m["parameters"] for m in modes] == [
        {"includeSubDepartments": True},
        {"includeSubDepartments": False},
    ]
    # Only the tree mode speaks of a subtree.
    enrolled = [next(c for c in m["columns"] if c["key"] == "enrollments") for m in modes]
    assert "every department under it" in enrolled[0]["description"]
    assert "not included" in enrolled[1]["description"]
    assert "under it" not in enrolled[1]["description"]

    denied = await client.get(f"{BASE}/report-types/department-summary", headers=auth("learner"))
    assert denied.status_code == 403
    missing = await client.get(f"{BASE}/report-types/nope", headers=auth("admin"))
    assert missing.status_code == 404


async def test_formats(client: httpx.AsyncClient, auth: Any) -> None:
    data = (await client.get(f"{BASE}/formats", headers=auth("learner"))).json()
    assert [f["code"] for f in data] == ["csv", "xlsx", "pdf", "json"]
    assert data[0]["contentType"] == "text/csv; charset=utf-8" and data[2]["fileExtension"] == "pdf"


async def test_lookup_categories_and_values(client: httpx.AsyncClient, auth: Any) -> None:
    headers = auth("manager")
    categories = (await client.get(f"{BASE}/lookups", headers=headers)).json()
    # Spec §3's eight, the compliance states and the course categories.
    assert len(categories) == 10
    assert {"category": "report-status", "label": "Report status", "count": 6} in categories

    await LookupValue.get_pymongo_collection().update_one(
        {"category": "enrollment-status", "code": "withdrawn"}, {"$set": {"is_active": False}}
    )
    values = (await client.get(f"{BASE}/lookups/enrollment-status", headers=headers)).json()
    assert [v["code"] for v in values] == ["enrolled", "in-progress", "completed", "failed"]
    assert [v["sortOrder"] for v in values] == sorted(v["sortOrder"] for v in values)
    everything = await client.get(
        f"{BASE}/lookups/enrollment-status", params={"includeInactive": "true"}, headers=headers
    )
    assert everything.json()[-1] == {
        "code": "withdrawn",
        "label": "Withdrawn",
        "labels": {"de": "Zurückgezogen"},
        "description": None,
        "sortOrder": 4,
        "isActive": False,
        "metadata": {},
    }
    formats = (await client.get(f"{BASE}/lookups/report-format", headers=headers)).json()
    assert formats[0]["metadata"] == {"contentType": "text/csv; charset=utf-8"}
    unknown = await client.get(f"{BASE}/lookups/colours", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["code"] == "lookup-category-not-found"


async def test_date_range_presets_resolve_now_in_the_timezone(
    client: httpx.AsyncClient, auth: Any
) -> None:
    response = await client.get(
        f"{BASE}/date-range-presets", params={"timezone": "Europe/Berlin"}, headers=auth("learner")
    )
    assert response.status_code == 200
    data = response.json()
    presets = {p["preset"]: p for p in data["items"]}
    assert len(presets) == 11
    now = datetime.fromisoformat(data["now"])
    today = now.astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
    assert presets["today"]["from"] == today and presets["today"]["to"] == today
    assert presets["last-7-days"]["to"] == today
    assert presets["custom"]["from"] is None and presets["custom"]["start"] is None
    start = datetime.fromisoformat(presets["today"]["start"])
    # Berlin midnight is 23:00 or 22:00 UTC the day before.
    assert start.hour in (22, 23)
    bad = await client.get(
        f"{BASE}/date-range-presets", params={"timezone": "Nowhere/Land"}, headers=auth()
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.timezone"


async def test_filter_options_are_scoped(client: httpx.AsyncClient, auth: Any) -> None:
    north = await factories.department("North", code="N")
    north_east = await factories.department("North East", code="NE", parent=north)
    south = await factories.department("South", code="S")
    teacher = await factories.user("Tina Teacher", dept=south, roles=["instructor"])
    alice = await factories.user("Alice", dept=north)
    bob = await factories.user("Bob", dept=north_east)
    carl = await factories.user("Carl", dept=south)
    algebra = await factories.course("ALG", title="Algebra", dept=north, instructors=[teacher])
    biology = await factories.course("BIO", title="Biology", dept=south)
    await factories.course("CHE", title="Chemistry", dept=south, instructors=[teacher])
    await factories.enrollment(bob, biology, enrolled_at=dt(2026, 1, 1))
    await factories.enrollment(carl, algebra, enrolled_at=dt(2026, 1, 1))
    await factories.enrollment(alice, algebra, enrolled_at=dt(2026, 1, 1))

    async def labels(headers: dict[str, str], kind: str, **params: Any) -> list[str]:
        response = await client.get(f"{BASE}/filter-options/{kind}", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [o["label"] for o in response.json()["items"]]

    admin = auth("admin")
    assert await labels(admin, "departments") == ["North", "North East", "South"]
    assert await labels(admin, "departments", q="north e") == ["North East"]

    manager = auth("manager", departments=[str(north.id)])
    assert await labels(manager, "departments") == ["North", "North East"]
    # Courses owned by its departments or taken in them.
    assert await labels(manager, "courses") == ["ALG — Algebra", "BIO — Biology"]
    assert await labels(manager, "users") == ["Alice", "Bob"]

    instructor = auth("instructor", sub=str(teacher.id))
    assert await labels(instructor, "courses") == ["ALG — Algebra", "CHE — Chemistry"]
    assert await labels(instructor, "users") == ["Alice", "Carl"]
    assert await labels(instructor, "departments") == ["North", "South"]

    learner = auth("learner", sub=str(alice.id), departments=[str(north.id)])
    assert await labels(learner, "users") == ["Alice"]
    assert await labels(learner, "courses") == ["ALG — Algebra"]
    assert await labels(learner, "departments") == ["North"]

    first = await client.get(f"{BASE}/filter-options/users", params={"limit": 2}, headers=admin)
    page = first.json()
    assert [o["label"] for o in page["items"]] == ["Alice", "Bob"]
    second = await client.get(
        f"{BASE}/filter-options/users",
        params={"limit": 2, "cursor": page["nextCursor"]},
        headers=admin,
    )
    assert [o["label"] for o in second.json()["items"]] == ["Carl", "Tina Teacher"]
    assert second.json()["nextCursor"] is None
    assert (await client.get(f"{BASE}/filter-options/planets", headers=admin)).status_code == 422
    bad_cursor = await client.get(
        f"{BASE}/filter-options/users", params={"cursor": "x"}, headers=admin
    )
    assert bad_cursor.status_code == 422


async def test_metadata_needs_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{BASE}/report-types")).status_code == 401
