"""Templates API: visibility, ownership, optimistic concurrency, delete guard, duplicate, run."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests import factories

BASE = "/api/v1/reports/templates"
PARAMS = {"dateRange": {"preset": "last-30-days"}, "timezone": "Europe/Berlin"}


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Monthly progress",
        "reportType": "learner-progress",
        "format": "xlsx",
        "parameters": PARAMS,
        **overrides,
    }


@pytest.fixture
async def org(auth: Any) -> dict[str, Any]:
    """Two departments; managers in each; a second manager in the first; a learner; an admin."""
    d1 = await factories.department("Sales")
    d2 = await factories.department("Support")
    ids = {"d1": str(d1.id), "d2": str(d2.id)}
    return {
        **ids,
        "author": auth("manager", sub="a" * 24, name="Alice", departments=[ids["d1"], ids["d2"]]),
        "colleague": auth("manager", sub="b" * 24, name="Bob", departments=[ids["d1"]]),
        "other": auth("manager", sub="c" * 24, name="Carol", departments=[ids["d2"]]),
        "instructor": auth("instructor", sub="d" * 24, name="Dan", departments=[ids["d1"]]),
        "learner": auth("learner", sub="e" * 24, name="Eve", departments=[ids["d1"]]),
        "admin": auth("admin", sub="f" * 24, name="Root"),
    }


async def create(client: httpx.AsyncClient, headers: dict[str, str], **kw: Any) -> dict[str, Any]:
    response = await client.post(BASE, json=body(**kw), headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_create_answers_201_with_location_etag_and_version_1(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    response = await client.post(BASE, json=body(visibility="department"), headers=org["author"])
    assert response.status_code == 201, response.text
    data = response.json()
    assert response.headers["location"] == f"{BASE}/{data['id']}"
    assert response.headers["etag"] == '"1"'
    assert data["version"] == 1
    assert data["owner"] == {"userId": "a" * 24, "name": "Alice"}
    assert sorted(data["ownerDepartmentIds"]) == sorted([org["d1"], org["d2"]])
    assert data["canEdit"] is True and data["archived"] is False
    got = await client.get(f"{BASE}/{data['id']}", headers=org["author"])
    assert got.status_code == 200 and got.headers["etag"] == '"1"'


async def test_create_validates_parameters_format_and_visibility(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    bad_params = await client.post(
        BASE, json=body(parameters={"dateRange": {"preset": "someday"}}), headers=org["author"]
    )
    assert bad_params.status_code == 422
    fields = [e["field"] for e in bad_params.json()["errors"]]
    assert any(f.startswith("body.parameters.dateRange") for f in fields), fields

    unknown = await client.post(BASE, json=body(parameters={"bogus": 1}), headers=org["author"])
    assert unknown.status_code == 422
    assert "body.parameters.bogus" in [e["field"] for e in unknown.json()["errors"]]

    bad_visibility = await client.post(BASE, json=body(visibility="public"), headers=org["author"])
    assert bad_visibility.status_code == 422
    error = bad_visibility.json()["errors"][0]
    assert error["field"] == "body.visibility"
    assert error["allowed"] == ["private", "department", "organization"]

    bad_format = await client.post(BASE, json=body(format="docx"), headers=org["author"])
    assert bad_format.status_code == 422

    no_department = await client.post(
        BASE, json=body(visibility="department"), headers=org["admin"]
    )
    assert no_department.status_code == 422


async def test_role_that_may_not_run_the_type_cannot_save_it(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    response = await client.post(
        BASE, json=body(reportType="department-summary", parameters={}), headers=org["learner"]
    )
    assert response.status_code == 403
    assert response.json()["code"] == "report-type-not-allowed"


async def test_visibility_rules(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    private = await create(client, org["author"], name="Private one")
    department = await create(client, org["author"], name="Team one", visibility="department")
    organization = await create(client, org["author"], name="Org one", visibility="organization")
    own_colleague = await create(client, org["colleague"], name="Bob's own")

    async def names(who: str, **params: Any) -> set[str]:
        response = await client.get(BASE, headers=org[who], params=params)
        assert response.status_code == 200, response.text
        return {t["name"] for t in response.json()["items"]}

    assert await names("author") == {"Private one", "Team one", "Org one"}
    # Bob shares department d1 with Alice.
    assert await names("colleague") == {"Team one", "Org one", "Bob's own"}
    # Carol is in d2, one of Alice's departments too.
    assert await names("other") == {"Team one", "Org one"}
    assert await names("instructor") == {"Team one", "Org one"}
    assert await names("learner") == set()
    assert await names("admin") == {"Private one", "Team one", "Org one", "Bob's own"}

    # An invisible template is a 404, not a 403.
    hidden = await client.get(f"{BASE}/{private['id']}", headers=org["colleague"])
    assert hidden.status_code == 404
    assert (
        await client.get(f"{BASE}/{own_colleague['id']}", headers=org["other"])
    ).status_code == 404
    shared = await client.get(f"{BASE}/{department['id']}", headers=org["colleague"])
    assert shared.status_code == 200 and shared.json()["canEdit"] is False
    assert (
        await client.get(f"{BASE}/{organization['id']}", headers=org["learner"])
    ).status_code == 404
    assert (await client.get(f"{BASE}/not-an-id", headers=org["author"])).status_code == 404

    # Filters.
    assert await names("colleague", visibility="organization") == {"Org one"}
    assert await names("colleague", owner="me") == {"Bob's own"}
    assert await names("admin", owner="a" * 24, q="ONE") == {"Private one", "Team one", "Org one"}
    assert await names("admin", reportType="course-completion") == set()


async def test_list_is_paginated_newest_first(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    for n in range(5):
        await create(client, org["author"], name=f"T{n}")
    first = (await client.get(BASE, headers=org["author"], params={"limit": 2})).json()
    assert [t["name"] for t in first["items"]] == ["T4", "T3"]
    assert first["total"] == 5 and first["nextCursor"]
    second = (
        await client.get(
            BASE, headers=org["author"], params={"limit": 2, "cursor": first["nextCursor"]}
        )
    ).json()
    third = (
        await client.get(
            BASE, headers=org["author"], params={"limit": 2, "cursor": second["nextCursor"]}
        )
    ).json()
    assert [t["name"] for t in second["items"] + third["items"]] == ["T2", "T1", "T0"]
    assert third["nextCursor"] is None
    assert (await client.get(BASE, headers=org["author"], params={"limit": 101})).status_code == 422
    bad = await client.get(BASE, headers=org["author"], params={"cursor": "garbage"})
    assert bad.status_code == 422


async def test_update_if_match_version_and_412(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    template = await create(client, org["author"], visibility="department")
    url = f"{BASE}/{template['id']}"

    first = await client.patch(
        url, json={"name": "Renamed"}, headers={**org["author"], "If-Match": '"1"'}
    )
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2 and first.headers["etag"] == '"2"'

    # A second editor still holding version 1 gets a 412 with the current version.
    stale = await client.patch(
        url, json={"description": "x"}, headers={**org["author"], "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "template-version-mismatch"
    assert stale.json()["currentVersion"] == 2
    assert stale.headers["etag"] == '"2"'

    stale_body = await client.patch(
        url, json={"description": "x", "version": 1}, headers=org["author"]
    )
    assert stale_body.status_code == 412

    by_body = await client.patch(url, json={"format": "pdf", "version": 2}, headers=org["author"])
    assert by_body.status_code == 200 and by_body.json()["version"] == 3

    weak = await client.patch(
        url, json={"archived": True}, headers={**org["author"], "If-Match": 'W/"3"'}
    )
    assert weak.status_code == 200 and weak.json()["version"] == 4 and weak.json()["archived"]

    # Without a precondition the change applies; every change increments the version.
    params = await client.patch(
        url, json={"parameters": {"dateRange": {"preset": "last-month"}}}, headers=org["author"]
    )
    assert params.status_code == 200 and params.json()["version"] == 5

    # Sending the same values again is not a change.
    same = await client.patch(url, json={"name": "Renamed"}, headers=org["author"])
    assert same.status_code == 200 and same.json()["version"] == 5

    invalid = await client.patch(
        url, json={"parameters": {"dateRange": {"preset": "custom"}}}, headers=org["author"]
    )
    assert invalid.status_code == 422
    assert any(e["field"].startswith("body.parameters.dateRange") for e in invalid.json()["errors"])

    garbage = await client.patch(
        url, json={"name": "x"}, headers={**org["author"], "If-Match": "abc"}
    )
    assert garbage.status_code == 422

    final = await client.get(url, headers=org["author"])
    assert final.json()["version"] == 5 and final.json()["name"] == "Renamed"


async def test_concurrent_changes_without_if_match_are_all_accepted_never_412(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    """Without a precondition the last writer wins: 20 editors at once all get 200, each with a
    version of its own, and the template ends at version 21 (documented in the contract)."""
    template = await create(client, org["author"])
    url = f"{BASE}/{template['id']}"
    presets = ["yesterday", "last-7-days", "last-30-days", "last-month"]

    def change(n: int) -> dict[str, Any]:
        if n % 3 == 0:
            return {"name": f"Edit {n}"}
        if n % 3 == 1:
            return {"parameters": {"dateRange": {"preset": presets[n % 4]}}, "name": f"Edit {n}"}
        return {"format": ["csv", "pdf"][n % 2], "description": f"edit {n}"}

    answers = await asyncio.gather(
        *(client.patch(url, json=change(n), headers=org["author"]) for n in range(20))
    )
    assert [a.status_code for a in answers] == [200] * 20, [
        a.text for a in answers if a.status_code != 200
    ]
    assert sorted(a.json()["version"] for a in answers) == list(range(2, 22))
    assert all(a.headers["etag"] == f'"{a.json()["version"]}"' for a in answers)
    final = await client.get(url, headers=org["author"])
    assert final.json()["version"] == 21
    # Whatever won, the stored request is one that was checked: it runs.
    assert (await client.post(f"{url}/run", headers=org["author"])).status_code == 202

    described = (await client.get("/openapi.json")).json()
    update = described["paths"]["/api/v1/reports/templates/{template_id}"]["patch"]
    assert "412" in update["responses"] and "428" not in update["responses"]
    assert "last writer wins; never 412" in update["description"]


async def test_only_owner_or_admin_may_change_or_delete(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    template = await create(client, org["author"], visibility="organization")
    url = f"{BASE}/{template['id']}"
    patch = await client.patch(url, json={"name": "Mine now"}, headers=org["colleague"])
    assert patch.status_code == 403 and patch.json()["code"] == "template-not-owned"
    assert (await client.delete(url, headers=org["colleague"])).status_code == 403
    admin = await client.patch(url, json={"name": "Fixed by admin"}, headers=org["admin"])
    assert admin.status_code == 200 and admin.json()["version"] == 2
    assert admin.json()["owner"]["userId"] == "a" * 24
    assert (await client.delete(url, headers=org["admin"])).status_code == 204
    assert (await client.get(url, headers=org["author"])).status_code == 404


async def test_delete_is_409_naming_schedules_that_use_it(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    template = await create(client, org["author"])
    schedule = await client.post(
        "/api/v1/reports/schedules",
        json={
            "name": "Weekly from template",
            "templateId": template["id"],
            "frequency": "weekly",
            "dayOfWeek": "monday",
            "timeOfDay": "07:00",
            "timezone": "Europe/Berlin",
        },
        headers=org["author"],
    )
    assert schedule.status_code == 201, schedule.text
    schedule_id = schedule.json()["id"]

    url = f"{BASE}/{template['id']}"
    blocked = await client.delete(url, headers=org["author"])
    assert blocked.status_code == 409
    problem = blocked.json()
    assert problem["code"] == "template-in-use"
    assert "Weekly from template" in problem["detail"]
    assert problem["schedules"] == [
        {
            "id": schedule_id,
            "name": "Weekly from template",
            "status": "active",
            "templateVersion": None,
        }
    ]
    # A paused schedule still uses it.
    await client.post(f"/api/v1/reports/schedules/{schedule_id}/pause", headers=org["author"])
    assert (await client.delete(url, headers=org["author"])).status_code == 409

    await client.delete(f"/api/v1/reports/schedules/{schedule_id}", headers=org["author"])
    assert (await client.delete(url, headers=org["author"])).status_code == 204


async def test_duplicate_makes_a_private_copy_owned_by_the_caller(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    template = await create(client, org["author"], visibility="department")
    await client.patch(
        f"{BASE}/{template['id']}", json={"name": "Team report"}, headers=org["author"]
    )
    copy = await client.post(f"{BASE}/{template['id']}/duplicate", headers=org["colleague"])
    assert copy.status_code == 201, copy.text
    data = copy.json()
    assert data["name"] == "Copy of Team report"
    assert data["visibility"] == "private" and data["version"] == 1
    assert data["owner"]["userId"] == "b" * 24 and data["canEdit"] is True
    assert data["parameters"] == PARAMS
    assert copy.headers["location"] == f"{BASE}/{data['id']}"

    named = await client.post(
        f"{BASE}/{template['id']}/duplicate", json={"name": "Mine"}, headers=org["colleague"]
    )
    assert named.json()["name"] == "Mine"
    private = await create(client, org["author"])
    assert (
        await client.post(f"{BASE}/{private['id']}/duplicate", headers=org["other"])
    ).status_code == 404


async def test_run_creates_a_job_with_the_runners_scope(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    # Alice (d1 + d2) saves a template filtered on d2 and shares it with the organization.
    template = await create(
        client,
        org["author"],
        visibility="organization",
        parameters={**PARAMS, "departmentIds": [org["d2"]]},
    )
    run_url = f"{BASE}/{template['id']}/run"

    # Carol (d2) may run it: d2 is in her scope.
    ok = await client.post(run_url, headers=org["other"])
    assert ok.status_code == 202, ok.text
    job = ok.json()
    assert ok.headers["location"] == f"/api/v1/reports/jobs/{job['id']}"
    assert job["templateId"] == template["id"]
    assert job["requestedBy"]["userId"] == "c" * 24
    assert job["format"] == "xlsx" and job["scheduledFor"] is None

    # Bob (d1 only) runs the same template: his scope applies, not Alice's -> 403 naming d2.
    denied = await client.post(run_url, headers=org["colleague"])
    assert denied.status_code == 403
    assert denied.json()["code"] == "scope-exceeded"
    assert org["d2"] in denied.json()["detail"]

    # Overrides for one run: Bob narrows to his own department and asks for a PDF.
    override = await client.post(
        run_url,
        json={"parameters": {"departmentIds": [org["d1"]]}, "format": "pdf"},
        headers=org["colleague"],
    )
    assert override.status_code == 202, override.text
    assert override.json()["format"] == "pdf"
    assert override.json()["parameters"]["departmentIds"] == [org["d1"]]
    assert override.json()["parameters"]["dateRange"] == {"preset": "last-30-days"}

    bad = await client.post(run_url, json={"parameters": {"bogus": True}}, headers=org["other"])
    assert bad.status_code == 422
    assert "body.parameters.bogus" in [e["field"] for e in bad.json()["errors"]]

    await client.patch(f"{BASE}/{template['id']}", json={"archived": True}, headers=org["author"])
    archived = await client.post(run_url, headers=org["other"])
    assert archived.status_code == 409 and archived.json()["code"] == "template-archived"


async def test_requires_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.get(BASE)).status_code == 401
