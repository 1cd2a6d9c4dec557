"""Template versions: every change keeps one (who, when, what changed), `?version=N` shows one or
is a 404, restoring is a PATCH with an old version's content, schedules follow the newest
version or pin one, and templates saved before versions were kept are backfilled once."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId

from app.config import Settings
from app.main import create_app
from app.reports.jobs.models import Requester
from app.reports.schedules.scheduler import run_due_schedules
from app.reports.templates.models import ReportTemplate, ReportTemplateVersion
from app.runtime.resources import Resources
from tests import factories
from tests.helpers.api import api_client
from tests.helpers.tokens import TokenFactory

BASE = "/api/v1/reports/templates"
SCHEDULES = "/api/v1/reports/schedules"
FIRST = {
    "name": "Monthly progress",
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "last-30-days"}},
    "visibility": "department",
}
CONTENT = ("name", "description", "reportType", "format", "parameters", "visibility", "archived")


@pytest.fixture
async def org(auth: TokenFactory) -> dict[str, Any]:
    sales = await factories.department("Sales")
    support = await factories.department("Support")
    owner = await factories.user("Alice Author", dept=sales, roles=["manager"])
    d1, d2 = str(sales.id), str(support.id)
    return {
        "owner_id": str(owner.id),
        "author": auth("manager", sub=str(owner.id), name="Alice Author", departments=[d1]),
        "colleague": auth("manager", sub="b" * 24, name="Bob", departments=[d1]),
        "outsider": auth("manager", sub="c" * 24, name="Carol", departments=[d2]),
        "learner": auth("learner", sub="e" * 24, name="Eve", departments=[d1]),
        "admin": auth("admin", sub="f" * 24, name="Root"),
    }


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    answer = await response if asyncio.iscoroutine(response) else response
    assert answer.status_code == status, answer.text
    data: dict[str, Any] = answer.json()
    return data


def content(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item.get(key) for key in CONTENT}


async def versions(
    client: httpx.AsyncClient, template_id: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    page = await ok(client.get(f"{BASE}/{template_id}/versions", params=params, headers=headers))
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_three_edits_make_four_versions_with_who_when_and_what_changed(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    created = await ok(client.post(BASE, json=FIRST, headers=org["author"]), 201)
    url = f"{BASE}/{created['id']}"
    await ok(client.patch(url, json={"name": "Monthly progress, Sales"}, headers=org["author"]))
    third = await ok(
        client.patch(
            url,
            json={"format": "xlsx", "parameters": {"dateRange": {"preset": "last-month"}}},
            headers={**org["admin"], "If-Match": '"2"'},
        )
    )
    assert third["version"] == 3
    fourth = await ok(client.patch(url, json={"description": "For HR"}, headers=org["author"]))
    assert fourth["version"] == 4 and fourth["latestVersion"] == 4
    # Sending what is already there is no change and keeps no version.
    same = await ok(client.patch(url, json={"description": "For HR"}, headers=org["author"]))
    assert same["version"] == 4

    listed = await ok(client.get(f"{url}/versions", headers=org["author"]))
    assert listed["total"] == 4
    items = listed["items"]
    assert [v["version"] for v in items] == [4, 3, 2, 1]
    assert [v["changedFields"] for v in items] == [
        ["description"],
        ["format", "parameters"],
        ["name"],
        [],
    ]
    assert [v["origin"] for v in items] == ["changed", "changed", "changed", "created"]
    assert [v["changedBy"]["name"] for v in items] == [
        "Alice Author",
        "Root",
        "Alice Author",
        "Alice Author",
    ]
    moments = [datetime.fromisoformat(v["createdAt"]) for v in items]
    assert moments == sorted(moments, reverse=True)
    assert all(v["templateId"] == created["id"] for v in items)
    assert content(items[0]) == content(fourth) and content(items[1]) == content(third)
    assert items[0]["createdAt"] == fourth["updatedAt"]
    assert content(items[3]) == content(created)

    # Pages, and the oldest first on request.
    first_page = await ok(client.get(f"{url}/versions", params={"limit": 3}, headers=org["author"]))
    rest = await ok(
        client.get(
            f"{url}/versions",
            params={"limit": 3, "cursor": first_page["nextCursor"]},
            headers=org["author"],
        )
    )
    assert [v["version"] for v in first_page["items"] + rest["items"]] == [4, 3, 2, 1]
    assert rest["nextCursor"] is None
    oldest_first = await versions(client, created["id"], org["author"], sort="version")
    assert [v["version"] for v in oldest_first] == [1, 2, 3, 4]
    bad_sort = await client.get(f"{url}/versions", params={"sort": "name"}, headers=org["author"])
    assert bad_sort.status_code == 422

    # One version, and the template as it was at it.
    one = await ok(client.get(f"{url}/versions/1", headers=org["author"]))
    assert content(one) == content(created) and one["changedFields"] == []
    at_one = await client.get(url, params={"version": 1}, headers=org["author"])
    assert at_one.status_code == 200 and at_one.headers["etag"] == '"1"'
    shown = at_one.json()
    assert content(shown) == content(created)
    assert shown["version"] == 1 and shown["latestVersion"] == 4
    now = await client.get(url, headers=org["author"])
    assert now.json()["version"] == 4 and now.json()["name"] == "Monthly progress, Sales"
    assert shown["id"] == created["id"] and shown["createdAt"] == now.json()["createdAt"]
    assert shown["updatedAt"] == one["createdAt"]

    # An unknown version is a 404, never the current one.
    for missing in (f"{url}/versions/5", f"{url}/versions/99"):
        answer = await client.get(missing, headers=org["author"])
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "template-version-not-found"
    unknown = await client.get(url, params={"version": 5}, headers=org["author"])
    assert unknown.status_code == 404 and unknown.json()["code"] == "template-version-not-found"
    assert "no version 5" in unknown.json()["detail"]
    for bad in ({"version": 0}, {"version": "first"}):
        answer = await client.get(url, params=bad, headers=org["author"])
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "query.version"
    assert (await client.get(f"{url}/versions/0", headers=org["author"])).status_code == 422
    elsewhere = await client.get(f"{BASE}/{'0' * 24}/versions/1", headers=org["author"])
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "template-not-found"


async def test_restoring_is_a_patch_with_an_old_versions_content(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    created = await ok(client.post(BASE, json=FIRST, headers=org["author"]), 201)
    url = f"{BASE}/{created['id']}"
    await ok(
        client.patch(
            url,
            json={"name": "Renamed", "format": "pdf", "description": "x"},
            headers=org["author"],
        )
    )
    await ok(client.patch(url, json={"visibility": "private"}, headers=org["author"]))
    old = await ok(client.get(f"{url}/versions/1", headers=org["author"]))
    restore = {k: old[k] for k in CONTENT if k != "archived"}
    restored = await ok(
        client.patch(url, json=restore, headers={**org["author"], "If-Match": '"3"'})
    )
    assert restored["version"] == 4 and content(restored) == content(created)
    [newest] = await versions(client, created["id"], org["author"], limit=1)
    assert newest["version"] == 4 and newest["origin"] == "changed"
    assert newest["changedFields"] == ["name", "description", "format", "visibility"]
    # The restored version and the ones between stay as they were.
    assert [v["version"] for v in await versions(client, created["id"], org["author"])] == [
        4,
        3,
        2,
        1,
    ]


async def test_whoever_sees_the_template_sees_its_versions(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    shared = await ok(client.post(BASE, json=FIRST, headers=org["author"]), 201)
    await ok(client.patch(f"{BASE}/{shared['id']}", json={"name": "v2"}, headers=org["author"]))
    url = f"{BASE}/{shared['id']}"
    for who in ("colleague", "admin"):  # the same department; an admin
        assert len(await versions(client, shared["id"], org[who])) == 2
        assert (await client.get(f"{url}/versions/1", headers=org[who])).status_code == 200
        assert (await client.get(url, params={"version": 1}, headers=org[who])).status_code == 200
    for who in ("outsider", "learner"):  # not shared with them: 404, as for the template
        for path, params in (
            (f"{url}/versions", {}),
            (f"{url}/versions/1", {}),
            (url, {"version": 1}),
        ):
            answer = await client.get(path, params=params, headers=org[who])
            assert answer.status_code == 404 and answer.json()["code"] == "template-not-found"
    # Made private: the colleague no longer sees it, nor any of its versions (even the shared
    # ones): the template's visibility now decides.
    await ok(client.patch(url, json={"visibility": "private"}, headers=org["author"]))
    assert (await client.get(f"{url}/versions/1", headers=org["colleague"])).status_code == 404
    # Duplicating starts a new history at version 1.
    copy = await ok(client.post(f"{url}/duplicate", headers=org["author"]), 201)
    [first] = await versions(client, copy["id"], org["author"])
    assert first["version"] == 1 and first["origin"] == "created"
    assert first["changedBy"]["userId"] == org["owner_id"]


async def test_concurrent_changes_keep_consecutive_versions_without_gaps_or_duplicates(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    created = await ok(client.post(BASE, json=FIRST, headers=org["author"]), 201)
    url = f"{BASE}/{created['id']}"
    presets = ["yesterday", "last-7-days", "last-30-days", "last-month"]

    def change(n: int) -> dict[str, Any]:
        if n % 2:
            return {"name": f"Edit {n}", "parameters": {"dateRange": {"preset": presets[n % 4]}}}
        return {"description": f"edit {n}", "format": ["xlsx", "pdf"][n % 4 // 2]}

    # Without If-Match: all accepted (last writer wins), each answer its own version.
    answers = await asyncio.gather(
        *(client.patch(url, json=change(n), headers=org["author"]) for n in range(20))
    )
    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers]
    by_version = {a.json()["version"]: a.json() for a in answers}
    assert sorted(by_version) == list(range(2, 22))
    kept = await versions(client, created["id"], org["author"], limit=100)
    assert [v["version"] for v in kept] == list(range(21, 0, -1))
    assert (
        await ReportTemplateVersion.find({"template_id": PydanticObjectId(created["id"])}).count()
        == 21
    )
    for version in kept[:-1]:
        # Each version holds what its PATCH answered, and says what differs from the one
        # before it (whichever PATCH that was).
        assert content(version) == content(by_version[version["version"]])
        before = next(v for v in kept if v["version"] == version["version"] - 1)
        differs = [k for k in CONTENT if version[k] != before[k]]
        assert version["changedFields"] == differs and differs

    # With If-Match on the same version: exactly one wins, the others are 412.
    racing = await asyncio.gather(
        *(
            client.patch(
                url, json={"name": f"Race {n}"}, headers={**org["author"], "If-Match": '"21"'}
            )
            for n in range(8)
        )
    )
    assert sorted(a.status_code for a in racing) == [200] + [412] * 7
    assert [
        v["version"] for v in await versions(client, created["id"], org["author"], limit=3)
    ] == [
        22,
        21,
        20,
    ]


async def test_a_pinned_schedule_runs_its_version_and_its_job_names_it(
    client: httpx.AsyncClient, org: dict[str, Any], resources: Resources, run_worker: Any
) -> None:
    author = org["author"]
    created = await ok(client.post(BASE, json=FIRST, headers=author), 201)
    url = f"{BASE}/{created['id']}"
    v2 = {"format": "xlsx", "parameters": {"dateRange": {"preset": "last-month"}}}
    await ok(client.patch(url, json=v2, headers=author))
    await ok(client.patch(url, json={"name": "Third"}, headers=author))
    v4 = {"format": "csv", "parameters": {"dateRange": {"preset": "yesterday"}}}
    assert (await ok(client.patch(url, json=v4, headers=author)))["version"] == 4

    timing = {"frequency": "daily", "timeOfDay": "06:00", "timezone": "UTC"}
    pinned = await ok(
        client.post(
            SCHEDULES,
            json={"name": "Pinned", "templateId": created["id"], "templateVersion": 2, **timing},
            headers=author,
        ),
        201,
    )
    assert pinned["templateVersion"] == 2
    latest = await ok(
        client.post(
            SCHEDULES,
            json={"name": "Latest", "templateId": created["id"], **timing},
            headers=author,
        ),
        201,
    )
    assert latest["templateVersion"] is None

    # The tick runs both at their slot: the pinned one with version 2, the other with 4.
    slot = datetime.fromisoformat(pinned["nextRunAt"].replace("Z", "+00:00"))
    assert await run_due_schedules(resources, now=slot) == 2
    [pinned_job] = (await ok(client.get(f"{SCHEDULES}/{pinned['id']}/runs", headers=author)))[
        "items"
    ]
    [latest_job] = (await ok(client.get(f"{SCHEDULES}/{latest['id']}/runs", headers=author)))[
        "items"
    ]
    assert pinned_job["templateId"] == created["id"] and pinned_job["templateVersion"] == 2
    assert pinned_job["format"] == "xlsx"
    assert pinned_job["parameters"]["dateRange"] == {"preset": "last-month"}
    assert latest_job["templateVersion"] == 4 and latest_job["format"] == "csv"
    assert latest_job["parameters"]["dateRange"] == {"preset": "yesterday"}

    await run_worker()
    done = await ok(client.get(f"/api/v1/reports/jobs/{pinned_job['id']}", headers=author))
    assert done["status"] == "completed" and done["templateVersion"] == 2
    assert done["result"]["fileName"].endswith(".xlsx")

    # run-now of the pinned schedule: version 2 again, even after a fifth version.
    await ok(client.patch(url, json={"format": "pdf"}, headers=author))
    again = await ok(client.post(f"{SCHEDULES}/{pinned['id']}/run-now", headers=author), 202)
    assert again["templateVersion"] == 2 and again["format"] == "xlsx"
    # A template run names the version it ran.
    run = await ok(client.post(f"{url}/run", headers=author), 202)
    assert run["templateVersion"] == 5 and run["format"] == "pdf"

    # Following the newest again, and pinning another one.
    followed = await ok(
        client.patch(f"{SCHEDULES}/{pinned['id']}", json={"templateVersion": None}, headers=author)
    )
    assert followed["templateVersion"] is None
    now_run = await ok(client.post(f"{SCHEDULES}/{pinned['id']}/run-now", headers=author), 202)
    assert now_run["templateVersion"] == 5 and now_run["format"] == "pdf"
    repinned = await ok(
        client.patch(f"{SCHEDULES}/{pinned['id']}", json={"templateVersion": 1}, headers=author)
    )
    assert repinned["templateVersion"] == 1

    # A version the template does not have is a 422 naming the field.
    unknown = await client.patch(
        f"{SCHEDULES}/{pinned['id']}", json={"templateVersion": 9}, headers=author
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "body.templateVersion"
    assert "no version 9" in unknown.json()["errors"][0]["message"]
    missing = await client.post(
        SCHEDULES,
        json={"name": "x", "templateId": created["id"], "templateVersion": 6, **timing},
        headers=author,
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "body.templateVersion"
    inline = await client.post(
        SCHEDULES,
        json={
            "name": "Inline",
            "reportType": "learner-progress",
            "format": "csv",
            "templateVersion": 1,
            **timing,
        },
        headers=author,
    )
    assert inline.status_code == 422
    assert inline.json()["errors"][0]["field"] == "body.templateVersion"


async def test_deleting_a_template_a_schedule_pins_is_409_naming_it(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    author = org["author"]
    created = await ok(client.post(BASE, json=FIRST, headers=author), 201)
    url = f"{BASE}/{created['id']}"
    await ok(client.patch(url, json={"name": "Second"}, headers=author))
    schedule = await ok(
        client.post(
            SCHEDULES,
            json={
                "name": "Pinned to the first",
                "templateId": created["id"],
                "templateVersion": 1,
                "frequency": "daily",
                "timeOfDay": "06:00",
            },
            headers=author,
        ),
        201,
    )
    blocked = await client.delete(url, headers=author)
    assert blocked.status_code == 409
    problem = blocked.json()
    assert problem["code"] == "template-in-use"
    assert (
        "'Pinned to the first'" in problem["detail"] and "pinned to version 1" in problem["detail"]
    )
    assert problem["schedules"] == [
        {
            "id": schedule["id"],
            "name": "Pinned to the first",
            "status": "active",
            "templateVersion": 1,
        }
    ]
    assert (await client.delete(f"{SCHEDULES}/{schedule['id']}", headers=author)).status_code == 204
    assert (await client.delete(url, headers=author)).status_code == 204
    # Its versions went with it.
    assert (await client.get(f"{url}/versions", headers=author)).status_code == 404
    assert await ReportTemplateVersion.find({}).count() == 0


async def test_templates_saved_before_versions_were_kept_are_backfilled_once(
    resources: Resources, settings: Settings, auth: TokenFactory
) -> None:
    owner = Requester(user_id="a" * 24, name="Alice", department_ids=[])
    legacy = await ReportTemplate(
        name="Old one",
        report_type="learner-progress",
        format="csv",
        parameters={"dateRange": {"preset": "last-month"}},
        owner=owner,
        version=3,
    ).insert()
    assert legacy.id is not None
    headers = auth("manager", sub="a" * 24, name="Alice")

    app = create_app(settings, resources=resources)
    for _ in range(2):  # two start-ups (or two replicas): one version kept
        async with app.router.lifespan_context(app):
            pass
    assert await ReportTemplateVersion.find({"template_id": legacy.id}).count() == 1

    async with app.router.lifespan_context(app), api_client(app) as client:
        url = f"{BASE}/{legacy.id}"
        [kept] = await versions(client, str(legacy.id), headers)
        assert kept["version"] == 3 and kept["origin"] == "backfilled"
        assert kept["changedBy"] is None and kept["changedFields"] == []
        assert kept["name"] == "Old one" and kept["parameters"] == legacy.parameters
        # The versions before it were never kept: 404, not the current one.
        assert (await client.get(url, params={"version": 1}, headers=headers)).status_code == 404
        changed = await ok(client.patch(url, json={"format": "xlsx"}, headers=headers))
        assert changed["version"] == 4
        listed = await versions(client, str(legacy.id), headers)
        assert [(v["version"], v["changedFields"]) for v in listed] == [(4, ["format"]), (3, [])]

        # One changed by an older release after start-up (no version kept for its current
        # state): its next change keeps that state first, so no version goes missing.
        later = await ReportTemplate(
            name="Later", report_type="learner-progress", format="csv", owner=owner, version=2
        ).insert()
        await ok(
            client.patch(f"{BASE}/{later.id}", json={"name": "Later, renamed"}, headers=headers)
        )
        listed = await versions(client, str(later.id), headers)
        assert [(v["version"], v["origin"]) for v in listed] == [(3, "changed"), (2, "backfilled")]
        assert listed[1]["name"] == "Later" and listed[0]["name"] == "Later, renamed"
