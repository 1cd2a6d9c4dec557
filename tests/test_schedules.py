"""Schedules API: create (inline or from a template), timing validation, next-5 preview across
DST, ownership, update / pause / resume, run-now and run history."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.common.time import utcnow
from app.reports.schedules.models import ReportSchedule
from app.reports.schedules.scheduler import run_due_schedules
from app.runtime.resources import Resources
from tests import factories

BASE = "/api/v1/reports/schedules"
PARAMS = {"dateRange": {"preset": "yesterday"}}


def inline(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Nightly progress",
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": PARAMS,
        "frequency": "daily",
        "timeOfDay": "02:30",
        "timezone": "Europe/Berlin",
        **overrides,
    }


@pytest.fixture
async def people(auth: Any) -> dict[str, Any]:
    dept = await factories.department("Ops")
    owner = await factories.user("Mia Manager", dept=dept, roles=["manager"])
    return {
        "dept": str(dept.id),
        "owner_id": str(owner.id),
        "owner": auth("manager", sub=str(owner.id), name="Mia Manager", departments=[str(dept.id)]),
        "stranger": auth("manager", sub="1" * 24, departments=[str(dept.id)]),
        "admin": auth("admin", sub="2" * 24),
    }


async def create(client: httpx.AsyncClient, headers: dict[str, str], **kw: Any) -> dict[str, Any]:
    response = await client.post(BASE, json=inline(**kw), headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_next_five_runs_of_daily_0230_berlin_across_march_dst(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    response = await client.post(BASE, json=inline(startDate="2027-03-26"), headers=people["owner"])
    assert response.status_code == 201, response.text
    data = response.json()
    assert response.headers["location"] == f"{BASE}/{data['id']}"
    runs = data["nextRuns"]
    assert [r["local"] for r in runs] == [
        "2027-03-26T02:30:00+01:00",
        "2027-03-27T02:30:00+01:00",
        "2027-03-28T03:00:00+02:00",  # 02:30 does not exist that day
        "2027-03-29T02:30:00+02:00",
        "2027-03-30T02:30:00+02:00",
    ]
    assert [r["utc"] for r in runs] == [
        "2027-03-26T01:30:00Z",
        "2027-03-27T01:30:00Z",
        "2027-03-28T01:00:00Z",
        "2027-03-29T00:30:00Z",
        "2027-03-30T00:30:00Z",
    ]
    assert data["nextRunAt"] == "2027-03-26T01:30:00Z"
    assert data["status"] == "active" and data["owner"]["userId"] == people["owner_id"]
    got = await client.get(f"{BASE}/{data['id']}", headers=people["owner"])
    assert got.json()["nextRuns"] == runs


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"frequency": "weekly"}, "body.dayOfWeek"),
        ({"frequency": "monthly"}, "body.dayOfMonth"),
        ({"frequency": "quarterly", "dayOfMonth": 32}, "body.dayOfMonth"),
        ({"dayOfWeek": 2}, "body.dayOfWeek"),
        ({"dayOfWeek": "someday", "frequency": "weekly"}, "body.dayOfWeek"),
        ({"timeOfDay": "24:00"}, "body.timeOfDay"),
        ({"timeOfDay": None}, "body.timeOfDay"),
        ({"frequency": "cron", "timeOfDay": None}, "body.cronExpression"),
        (
            {"frequency": "cron", "timeOfDay": None, "cronExpression": "* * * * *"},
            "body.cronExpression",
        ),
        ({"frequency": "cron", "cronExpression": "0 7 * * *"}, "body.timeOfDay"),
        ({"frequency": "hourly"}, "body.frequency"),
        ({"timezone": "Mars/Olympus"}, "body.timezone"),
        ({"startDate": "2027-02-01", "endDate": "2027-01-01"}, "body.endDate"),
        ({"endDate": "2020-01-01"}, "body.endDate"),
        ({"missedRunPolicy": "catch-up"}, "body.missedRunPolicy"),
        ({"recipients": ["not-an-email"]}, "body.recipients.0"),
        ({"reportType": None}, "body.reportType"),
        ({"format": None}, "body.format"),
        ({"parameters": {"dateRange": {"preset": "custom"}}}, "body.parameters.dateRange"),
    ],
)
async def test_invalid_timing_and_definition_are_422_naming_the_field(
    client: httpx.AsyncClient, people: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    payload = {k: v for k, v in inline(**changes).items() if v is not None}
    response = await client.post(BASE, json=payload, headers=people["owner"])
    assert response.status_code == 422, response.text
    fields = [e["field"] for e in response.json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields


async def test_weekly_monthly_quarterly_and_cron_are_accepted(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    weekly = await create(
        client, people["owner"], frequency="weekly", dayOfWeek="Fri", timezone="America/New_York"
    )
    assert weekly["dayOfWeek"] == 5
    assert all(r["local"][:10] and _weekday(r["local"]) == 5 for r in weekly["nextRuns"])
    monthly = await create(
        client, people["owner"], frequency="monthly", dayOfMonth=31, startDate="2027-01-01"
    )
    assert [r["local"][:10] for r in monthly["nextRuns"]] == [
        "2027-01-31",
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
        "2027-05-31",
    ]
    quarterly = await create(
        client, people["owner"], frequency="quarterly", dayOfMonth=30, startDate="2027-12-01"
    )
    assert [r["local"][:10] for r in quarterly["nextRuns"]] == [
        "2028-01-30",
        "2028-04-30",
        "2028-07-30",
        "2028-10-30",
        "2029-01-30",
    ]
    payload = inline(frequency="cron", cronExpression="0 7 * * 1-5")
    payload.pop("timeOfDay")
    cron = await client.post(BASE, json=payload, headers=people["owner"])
    assert cron.status_code == 201, cron.text
    assert cron.json()["timeOfDay"] is None
    assert all(r["local"][11:16] == "07:00" for r in cron.json()["nextRuns"])


def _weekday(iso: str) -> int:
    return datetime.fromisoformat(iso).isoweekday()


async def test_schedule_from_a_template_with_overrides(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    template = await client.post(
        "/api/v1/reports/templates",
        json={
            "name": "T",
            "reportType": "learner-progress",
            "format": "xlsx",
            "parameters": {"dateRange": {"preset": "last-month"}},
        },
        headers=people["owner"],
    )
    template_id = template.json()["id"]
    response = await client.post(
        BASE,
        json={
            "name": "From template",
            "templateId": template_id,
            "format": "pdf",
            "frequency": "monthly",
            "dayOfMonth": 1,
            "timeOfDay": "06:00",
            "timezone": "Europe/Berlin",
            "recipients": ["Boss@example.org", "boss@example.org", "team@example.org"],
        },
        headers=people["owner"],
    )
    assert response.status_code == 201, response.text
    data = response.json()
    assert data["templateId"] == template_id and data["reportType"] == "learner-progress"
    assert data["format"] == "pdf"
    assert data["recipients"] == ["Boss@example.org", "team@example.org"]

    both = await client.post(
        BASE,
        json={**inline(), "templateId": template_id},
        headers=people["owner"],
    )
    assert both.status_code == 422
    invisible = await client.post(
        BASE,
        json={"name": "x", "templateId": template_id, "frequency": "daily", "timeOfDay": "01:00"},
        headers=people["stranger"],
    )
    assert invisible.status_code == 422
    assert invisible.json()["errors"][0]["field"] == "body.templateId"

    run = await client.post(f"{BASE}/{data['id']}/run-now", headers=people["owner"])
    assert run.status_code == 202, run.text
    job = run.json()
    assert job["format"] == "pdf" and job["templateId"] == template_id
    assert job["parameters"]["dateRange"] == {"preset": "last-month"}
    assert job["parameters"]["timezone"] == "Europe/Berlin"


async def test_only_the_owner_or_an_admin_sees_a_schedule(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    mine = await create(client, people["owner"])
    url = f"{BASE}/{mine['id']}"
    assert (await client.get(url, headers=people["stranger"])).status_code == 404
    assert (
        await client.patch(url, json={"name": "x"}, headers=people["stranger"])
    ).status_code == 404
    assert (await client.delete(url, headers=people["stranger"])).status_code == 404
    assert (await client.post(f"{url}/run-now", headers=people["stranger"])).status_code == 404
    listed = await client.get(BASE, headers=people["stranger"])
    assert listed.json()["items"] == [] and listed.json()["total"] == 0
    admin = await client.get(BASE, headers=people["admin"])
    assert [s["id"] for s in admin.json()["items"]] == [mine["id"]]
    assert (await client.get(url, headers=people["admin"])).status_code == 200


async def test_update_recomputes_next_run(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    schedule = await create(client, people["owner"], startDate="2027-03-01")
    url = f"{BASE}/{schedule['id']}"
    response = await client.patch(
        url,
        json={"frequency": "weekly", "dayOfWeek": 3, "timeOfDay": "08:15"},
        headers=people["owner"],
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["frequency"] == "weekly" and data["dayOfWeek"] == 3
    assert data["nextRunAt"] == "2027-03-03T07:15:00Z"
    assert data["nextRuns"][0]["local"] == "2027-03-03T08:15:00+01:00"

    # Switching to monthly drops dayOfWeek and needs a dayOfMonth.
    missing = await client.patch(url, json={"frequency": "monthly"}, headers=people["owner"])
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "body.dayOfMonth"
    monthly = await client.patch(
        url, json={"frequency": "monthly", "dayOfMonth": 31}, headers=people["owner"]
    )
    assert monthly.status_code == 200
    assert (
        monthly.json()["dayOfWeek"] is None
        and monthly.json()["nextRunAt"] == "2027-03-31T06:15:00Z"
    )

    renamed = await client.patch(
        url, json={"name": "Renamed", "recipients": ["x@example.org"]}, headers=people["owner"]
    )
    assert renamed.json()["name"] == "Renamed" and renamed.json()["recipients"] == ["x@example.org"]
    bad = await client.patch(url, json={"parameters": {"bogus": 1}}, headers=people["owner"])
    assert bad.status_code == 422


async def test_concurrent_changes_are_all_accepted_last_writer_wins_never_412(
    client: httpx.AsyncClient, people: dict[str, Any]
) -> None:
    """Schedules carry no version: 20 editors at once all get 200 (documented in the contract),
    and the stored schedule is one of the changes sent."""
    schedule = await create(client, people["owner"], startDate="2027-03-01")
    url = f"{BASE}/{schedule['id']}"
    presets = ["yesterday", "last-7-days", "last-30-days", "last-month"]

    def change(n: int) -> dict[str, Any]:
        if n % 2:
            return {"name": f"Edit {n}", "timeOfDay": f"0{n % 10}:15"}
        return {"parameters": {"dateRange": {"preset": presets[n % 4]}}, "format": "pdf"}

    answers = await asyncio.gather(
        *(client.patch(url, json=change(n), headers=people["owner"]) for n in range(20))
    )
    assert [a.status_code for a in answers] == [200] * 20
    final = (await client.get(url, headers=people["owner"])).json()
    assert final["name"] in {f"Edit {n}" for n in range(1, 20, 2)}
    assert final["timeOfDay"] == f"0{int(final['name'].split()[1]) % 10}:15"
    assert final["format"] == "pdf" and final["parameters"]["dateRange"]["preset"] in presets

    described = (await client.get("/openapi.json")).json()
    update = described["paths"]["/api/v1/reports/schedules/{schedule_id}"]["patch"]
    assert not {"412", "428"} & update["responses"].keys()
    assert "the last writer wins (no If-Match, never 412)" in update["description"]


async def test_pause_resume_and_delete(
    client: httpx.AsyncClient, people: dict[str, Any], resources: Resources
) -> None:
    schedule = await create(client, people["owner"])
    url = f"{BASE}/{schedule['id']}"
    paused = await client.post(f"{url}/pause", json={"reason": "Holidays"}, headers=people["owner"])
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused" and paused.json()["pausedReason"] == "Holidays"
    # Nothing runs while it is paused, and it says so: no next run.
    assert paused.json()["nextRunAt"] is None and paused.json()["nextRuns"] == []
    assert await run_due_schedules(resources, now=utcnow().replace(year=2030)) == 0
    # One paused before this rule still has a stored next run: it is not shown either.
    stored = await ReportSchedule.get(schedule["id"])
    assert stored is not None and stored.next_run_at is None
    await ReportSchedule.get_pymongo_collection().update_one(
        {"_id": stored.id}, {"$set": {"next_run_at": utcnow()}}
    )
    shown = await client.get(url, headers=people["owner"])
    assert shown.json()["nextRunAt"] is None

    resumed = await client.post(f"{url}/resume", headers=people["owner"])
    assert resumed.status_code == 200
    body = resumed.json()
    assert body["status"] == "active" and body["pausedReason"] is None
    assert body["nextRunAt"] > utcnow().isoformat()[:19]  # computed afresh
    assert len(body["nextRuns"]) == 5 and body["nextRuns"][0]["utc"] == body["nextRunAt"]

    assert (await client.delete(url, headers=people["owner"])).status_code == 204
    assert (await client.get(url, headers=people["owner"])).status_code == 404


async def test_run_now_and_runs_history(
    client: httpx.AsyncClient, people: dict[str, Any], resources: Resources
) -> None:
    schedule = await create(client, people["owner"], timezone="UTC", timeOfDay="09:00")
    url = f"{BASE}/{schedule['id']}"

    # A scheduled run, made by the tick at the schedule's next slot.

    slot = datetime.fromisoformat(schedule["nextRunAt"].replace("Z", "+00:00"))
    assert await run_due_schedules(resources, now=slot) == 1

    now_runs = []
    for _ in range(2):
        response = await client.post(f"{url}/run-now", headers=people["owner"])
        assert response.status_code == 202, response.text
        assert response.headers["location"].startswith("/api/v1/reports/jobs/")
        assert response.json()["scheduledFor"] is None
        assert response.json()["scheduleId"] == schedule["id"]
        now_runs.append(response.json()["id"])

    page = await client.get(f"{url}/runs", params={"limit": 2}, headers=people["owner"])
    assert page.status_code == 200
    data = page.json()
    assert data["total"] == 3
    assert [j["id"] for j in data["items"]] == now_runs[::-1]
    rest = await client.get(
        f"{url}/runs", params={"cursor": data["nextCursor"]}, headers=people["owner"]
    )
    [scheduled] = rest.json()["items"]
    assert scheduled["scheduledFor"] == schedule["nextRunAt"] and scheduled["status"] == "queued"
    assert rest.json()["nextCursor"] is None
    assert (await client.get(f"{url}/runs", headers=people["stranger"])).status_code == 404

    # An admin's run-now of someone else's schedule runs as the owner (re-checked).
    admin_run = await client.post(f"{url}/run-now", headers=people["admin"])
    assert admin_run.status_code == 202, admin_run.text
    assert admin_run.json()["requestedBy"]["userId"] == people["owner_id"]
