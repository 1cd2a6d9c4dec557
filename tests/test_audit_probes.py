"""Denied probes: asking for another user's job, template or schedule answers the same 404 as an
id that does not exist, and leaves a `*.probe-denied` event in the audit trail; at most
AUDIT_PROBE_LIMIT per caller per window, counted in the database so every API process shares
the cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.audit.models import AuditEvent
from app.config import Settings
from app.main import create_app
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.tokens import TokenFactory

AUDIT = "/api/v1/reports/audit"
JOBS = "/api/v1/reports/jobs"
TEMPLATES = "/api/v1/reports/templates"
SCHEDULES = "/api/v1/reports/schedules"
PARAMS = {"dateRange": {"preset": "yesterday"}}
MISSING = "0123456789abcdef01234567"


@pytest.fixture
async def owned(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> dict[str, Any]:
    """A manager's job, private template and schedule, and a colleague of the same department."""
    dept = await f.department("Alpha")
    owner = await f.user("Olga Owner", dept=dept, roles=["manager"])
    mine = auth("manager", sub=str(owner.id), departments=[str(dept.id)])
    body = {"reportType": "learner-progress", "format": "csv", "parameters": PARAMS}
    job = await client.post(JOBS, json=body, headers=mine)
    template = await client.post(TEMPLATES, json={**body, "name": "Mine"}, headers=mine)
    schedule = await client.post(
        SCHEDULES,
        json={**body, "name": "Nightly", "frequency": "daily", "timeOfDay": "02:00"},
        headers=mine,
    )
    for created in (job, template, schedule):
        assert created.status_code in (201, 202), created.text
    return {
        "job": job.json()["id"],
        "template": template.json()["id"],
        "schedule": schedule.json()["id"],
        "owner": mine,
        "colleague": auth("manager", sub="c" * 24, departments=[str(dept.id)]),
    }


Call = tuple[str, str, dict[str, Any] | None]


def _calls(kind: str, object_id: str) -> list[Call]:
    calls: dict[str, list[Call]] = {
        "job": [
            ("GET", f"{JOBS}/{object_id}", None),
            ("GET", f"{JOBS}/{object_id}/download", None),
            ("POST", f"{JOBS}/{object_id}/cancel", None),
        ],
        "template": [
            ("GET", f"{TEMPLATES}/{object_id}", None),
            ("PATCH", f"{TEMPLATES}/{object_id}", {"name": "Taken over"}),
            ("POST", f"{TEMPLATES}/{object_id}/run", None),
        ],
        "schedule": [
            ("GET", f"{SCHEDULES}/{object_id}", None),
            ("GET", f"{SCHEDULES}/{object_id}/runs", None),
            ("DELETE", f"{SCHEDULES}/{object_id}", None),
        ],
    }
    return calls[kind]


async def _trail(client: httpx.AsyncClient, auth: TokenFactory, **params: str) -> list[Any]:
    r = await client.get(AUDIT, params=params, headers=auth("admin", sub="auditor"))
    assert r.status_code == 200, r.text
    items: list[Any] = r.json()["items"]
    return items


async def test_another_users_objects_answer_404_and_leave_a_denied_probe(
    client: httpx.AsyncClient, auth: TokenFactory, owned: dict[str, Any]
) -> None:
    colleague = owned["colleague"]
    for kind in ("job", "template", "schedule"):
        for method, url, body in _calls(kind, owned[kind]):
            probed = await client.request(method, url, json=body, headers=colleague)
            missing_url = url.replace(owned[kind], MISSING)
            missing = await client.request(method, missing_url, json=body, headers=colleague)
            # The same answer as for an id that does not exist: nothing tells them apart.
            assert probed.status_code == missing.status_code == 404, (url, probed.text)
            assert probed.json()["code"] == missing.json()["code"]
            assert probed.json()["detail"].replace(owned[kind], MISSING) == missing.json()["detail"]

    probes = await _trail(client, auth, outcome="denied")
    assert len(probes) == 9  # the ids that do not exist leave nothing
    for kind in ("job", "template", "schedule"):
        events = [e for e in reversed(probes) if e["objectType"] == kind]
        assert [e["action"] for e in events] == [f"{kind}.probe-denied"] * 3
        assert {e["objectId"] for e in events} == {owned[kind]}
        assert [e["method"] for e in events] == [m for m, _, _ in _calls(kind, owned[kind])]
        for event in events:
            assert event["actor"]["userId"] == "c" * 24
            assert event["reason"] == f"Another user's {kind}: answered 404 as if it did not exist."
            assert event["details"]["limit"] == 20
    assert [e["details"]["operation"] for e in probes if e["objectType"] == "job"] == [
        "jobs_cancel",
        "jobs_download",
        "jobs_get",
    ]
    # The owner's own calls and an admin's are not probes.
    assert (await client.get(f"{JOBS}/{owned['job']}", headers=owned["owner"])).status_code == 200
    admin = auth("admin", sub="a" * 24)
    assert (await client.get(f"{TEMPLATES}/{owned['template']}", headers=admin)).status_code == 200
    assert len(await _trail(client, auth, outcome="denied")) == 9


@pytest.fixture
async def replicas(settings: Settings, resources: Resources) -> AsyncIterator[list[FastAPI]]:
    """Two API processes' apps on one database, with a cap of 3 probes per caller."""
    capped = settings.model_copy(
        update={"audit_probe_limit": 3, "audit_probe_window_seconds": 86400}
    )
    apps = [create_app(capped, resources=resources) for _ in range(2)]
    async with (
        apps[0].router.lifespan_context(apps[0]),
        apps[1].router.lifespan_context(apps[1]),
    ):
        yield apps


async def test_probes_are_capped_per_caller_across_api_processes(
    auth: TokenFactory, owned: dict[str, Any], replicas: list[FastAPI]
) -> None:
    prober = owned["colleague"]
    other = auth("learner", sub="d" * 24)
    async with api_client(replicas[0]) as first, api_client(replicas[1]) as second:
        for n in range(8):  # alternately through each process
            via = first if n % 2 == 0 else second
            r = await via.get(f"{TEMPLATES}/{owned['template']}", headers=prober)
            assert r.status_code == 404
        assert (await second.get(f"{JOBS}/{owned['job']}", headers=other)).status_code == 404
        events = await _trail(first, auth, outcome="denied")

    mine = [e for e in reversed(events) if e["actor"]["userId"] == "c" * 24]
    assert [e["details"]["probe"] for e in mine] == [1, 2, 3]  # 8 probes, 3 recorded
    last = mine[-1]
    assert last["details"]["notRecordedUntil"].endswith("Z")
    assert "further probes by this caller are counted, not recorded" in last["reason"]
    # Another caller has a cap of its own.
    [theirs] = [e for e in events if e["actor"]["userId"] == "d" * 24]
    assert theirs["action"] == "job.probe-denied" and theirs["details"]["probe"] == 1


async def test_a_probe_that_cannot_be_recorded_still_answers_404(
    client: httpx.AsyncClient, owned: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: AuditEvent, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("audit store away")

    monkeypatch.setattr(AuditEvent, "insert", broken)
    r = await client.get(f"{SCHEDULES}/{owned['schedule']}", headers=owned["colleague"])
    assert r.status_code == 404 and r.json()["code"] == "schedule-not-found"
