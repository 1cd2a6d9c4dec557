"""The audit trail: actions and denials recorded with actor, object, scope and outcome; the
admin-only query with filters and cursor pages; an action that cannot be audited fails."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.audit.context import client_address, trusted_networks
from app.audit.models import AuditEvent
from app.config import Settings
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api_server import running_api
from tests.helpers.tokens import TokenFactory

AUDIT = "/api/v1/reports/audit"
JOBS = "/api/v1/reports/jobs"
TEMPLATES = "/api/v1/reports/templates"
RANGE = {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}


@pytest.fixture
async def org(resources: Resources) -> dict[str, Any]:
    a = await f.department("Alpha", code="ALPHA")
    b = await f.department("Bravo", code="BRAVO")
    course = await f.course("SEC-101", title="Security basics", mandatory=True)
    for dept, name in ((a, "Ada"), (b, "Boris")):
        learner = await f.user(name, dept=dept)
        await f.enrollment(learner, course, enrolled_at=f.dt(2026, 3, 1, 9))
    manager = await f.user("Maria Manager", dept=a, roles=["manager"])
    return {"a": str(a.id), "b": str(b.id), "manager": str(manager.id)}


async def _template(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, preset: str
) -> httpx.Response:
    body = {
        "name": name,
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": preset}},
    }
    return await client.post(TEMPLATES, json=body, headers=headers)


async def _events(client: httpx.AsyncClient, auth: TokenFactory, **params: str) -> list[Any]:
    r = await client.get(AUDIT, params=params, headers=auth("admin", sub="auditor"))
    assert r.status_code == 200, r.text
    items: list[Any] = r.json()["items"]
    return items


async def test_a_download_and_a_denied_download_are_audited_with_actor_and_scope(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any], run_worker: Any
) -> None:
    manager = auth("manager", sub=org["manager"], name="Maria", departments=[org["a"]])
    body = {"reportType": "learner-progress", "format": "csv", "parameters": {"dateRange": RANGE}}
    created = await client.post(JOBS, json=body, headers={**manager, "X-Request-ID": "req-1"})
    assert created.status_code == 202
    job_id = created.json()["id"]
    await run_worker()
    assert (await client.get(f"{JOBS}/{job_id}/download", headers=manager)).status_code == 200
    moved = auth("manager", sub=org["manager"], name="Maria", departments=[org["b"]])
    denied = await client.get(f"{JOBS}/{job_id}/download", headers=moved)
    assert denied.status_code == 403

    events = await _events(client, auth, objectId=job_id)
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("job.downloaded", "denied"),
        ("job.downloaded", "allowed"),
        ("job.created", "allowed"),
    ]
    refused, downloaded, made = events
    assert refused["actor"]["userId"] == org["manager"]
    assert refused["actor"]["role"] == "manager"
    assert refused["reason"] == "You no longer have access to all of the data in this report."
    assert refused["details"]["code"] == "job-access-revoked"
    assert refused["objectType"] == "job"
    for event in (downloaded, made):
        assert event["actor"] == {
            "userId": org["manager"],
            "name": "Maria",
            "role": "manager",
            "roles": ["manager"],
            "departmentIds": [org["a"]],
        }
        assert event["scope"]["departmentIds"] == [org["a"]]
        assert event["parameters"]["dateRange"]["from"] == "2026-01-01"
        assert event["details"]["reportType"] == "learner-progress"
    assert made["requestId"] == "req-1"
    assert made["method"] == "POST" and made["path"] == JOBS
    assert made["clientAddress"] == "127.0.0.1"


async def test_a_template_edit_is_audited_and_filters_narrow_the_trail(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any]
) -> None:
    author = auth("manager", sub="a" * 24, name="Alice", departments=[org["a"]])
    created = await _template(client, author, "Weekly", "last-7-days")
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]
    edited = await client.patch(
        f"{TEMPLATES}/{template_id}", json={"name": "Weekly progress"}, headers=author
    )
    assert edited.status_code == 200, edited.text

    events = await _events(client, auth, action="template.updated")
    [event] = events
    assert event["objectType"] == "template" and event["objectId"] == template_id
    assert event["actor"]["userId"] == "a" * 24 and event["outcome"] == "allowed"
    assert event["details"] == {"version": 2}
    mine = await _events(client, auth, userId="a" * 24)
    assert [e["action"] for e in mine] == ["template.updated", "template.created"]
    assert await _events(client, auth, userId="nobody") == []


async def test_only_admins_read_the_trail_and_the_refusal_is_audited(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    r = await client.get(AUDIT, headers=auth("manager", sub="m" * 24))
    assert r.status_code == 403 and r.json()["code"] == "admin-required"
    [event] = await _events(client, auth, outcome="denied")
    assert event["action"] == "audit.read" and event["actor"]["userId"] == "m" * 24
    assert event["reason"] == "Only administrators may read the audit trail."


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "query.to"),
        ({"from": "2026-02-01T00:00:00"}, "query.from"),
        ({"action": "job.exploded"}, "query.action"),
        ({"from": "yesterday"}, "query.from"),
        ({"cursor": "garbage"}, "query.cursor"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_it(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources,
    params: dict[str, str], field: str,
) -> None:  # fmt: skip
    r = await client.get(AUDIT, params=params, headers=auth("admin"))
    assert r.status_code == 422
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_pages_follow_the_cursor_newest_first(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    admin = auth("admin", sub="root")
    for n in range(5):
        r = await _template(client, admin, f"T{n}", "yesterday")
        assert r.status_code == 201
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {
            "limit": "2",
            "action": "template.created",
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await client.get(AUDIT, params=params, headers=admin)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5
    stored = await AuditEvent.find({"action": "template.created"}).sort("-created_at").to_list()
    assert seen == [str(e.id) for e in stored]


async def test_an_action_that_cannot_be_audited_fails_with_503(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    async def broken(self: AuditEvent, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("audit store away")

    monkeypatch.setattr(AuditEvent, "insert", broken)
    r = await _template(client, auth("admin"), "Unaudited", "yesterday")
    assert r.status_code == 503
    assert r.json()["code"] == "audit-unavailable"
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_replayed_request_is_recorded_as_a_replay_of_the_original_job(
    client: httpx.AsyncClient, auth: TokenFactory, org: dict[str, Any]
) -> None:
    """Every endpoint that takes an Idempotency-Key: one creating event per job, however often
    its request is replayed; each replay is `job.replayed` on the original job."""
    manager = auth("manager", sub=org["manager"], name="Maria", departments=[org["a"]])
    template = await _template(client, manager, "Weekly", "last-7-days")
    assert template.status_code == 201, template.text
    schedule = await client.post(
        "/api/v1/reports/schedules",
        json={
            "name": "Nightly",
            "reportType": "learner-progress",
            "format": "csv",
            "parameters": {"dateRange": {"preset": "yesterday"}},
            "frequency": "daily",
            "timeOfDay": "02:30",
            "timezone": "UTC",
        },
        headers=manager,
    )
    assert schedule.status_code == 201, schedule.text
    body = {"reportType": "learner-progress", "format": "csv", "parameters": {"dateRange": RANGE}}
    entries = [
        ("job.created", JOBS, body),
        ("job.created", JOBS, {"templateId": template.json()["id"]}),
        ("template.run", f"{TEMPLATES}/{template.json()['id']}/run", None),
        ("schedule.run-now", f"/api/v1/reports/schedules/{schedule.json()['id']}/run-now", None),
    ]
    for n, (action, url, payload) in enumerate(entries):
        key = f"key-{n}"
        answers = [
            await client.post(
                url,
                json=payload,
                headers={**manager, "Idempotency-Key": key, "X-Request-ID": f"req-{n}-{i}"},
            )
            for i in range(3)
        ]
        assert [a.status_code for a in answers] == [202, 200, 200], answers[0].text
        job_id = answers[0].json()["id"]
        assert {a.json()["id"] for a in answers} == {job_id}

        events = await _events(client, auth, objectId=job_id)
        assert [e["action"] for e in events] == ["job.replayed", "job.replayed", action]
        for i, replay in enumerate(reversed(events[:2]), start=1):
            assert replay["objectType"] == "job" and replay["outcome"] == "allowed"
            assert replay["requestId"] == f"req-{n}-{i}"
            assert replay["details"]["replayedAction"] == action
            assert replay["details"]["originalRequestId"] == f"req-{n}-0"
            assert replay["actor"]["userId"] == org["manager"]
    assert len(await _events(client, auth, action="job.replayed")) == 8


async def test_a_forwarded_address_is_recorded_only_when_it_is_an_ip_address(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    """The test client's peer (127.0.0.1) is a trusted proxy by default."""
    cases = [
        ("203.0.113.9", "203.0.113.9"),
        ("198.51.100.1, 203.0.113.9:4711", "203.0.113.9"),
        ("[2001:DB8::7]:443", "2001:db8::7"),
        ("<script>alert(1)</script>", "127.0.0.1"),
        ("1" * 2000, "127.0.0.1"),
        ("unknown", "127.0.0.1"),
        ("fe80::1%eth0", "127.0.0.1"),
        ("203.0.113.9, <script>", "127.0.0.1"),
    ]
    for n, (forwarded, _) in enumerate(cases):
        headers = {**auth("manager", sub=f"{n:024d}"), "X-Forwarded-For": forwarded}
        assert (await client.get(AUDIT, headers=headers)).status_code == 403
    events = await _events(client, auth, outcome="denied")
    recorded = {e["actor"]["userId"]: e["clientAddress"] for e in events}
    assert recorded == {f"{n:024d}": want for n, (_, want) in enumerate(cases)}


async def test_the_served_api_believes_only_ip_addresses_from_its_trusted_proxy(
    settings: Settings, auth: TokenFactory, resources: Resources
) -> None:
    """`python -m app` behind a proxy on 127.0.0.1 (the default TRUSTED_PROXIES): uvicorn does
    not rewrite the client address; the app works it out and checks it."""
    with running_api(settings) as api:
        async with httpx.AsyncClient(base_url=api) as http:
            for n, forwarded in enumerate(["203.0.113.9", "<script>", "2" * 2000]):
                headers = {**auth("manager", sub=f"{n:024d}"), "X-Forwarded-For": forwarded}
                assert (await http.get(AUDIT, headers=headers)).status_code == 403
            page = await http.get(
                AUDIT, params={"outcome": "denied"}, headers=auth("admin", sub="auditor")
            )
    recorded = {e["actor"]["userId"]: e["clientAddress"] for e in page.json()["items"]}
    assert recorded == {
        f"{0:024d}": "203.0.113.9",
        f"{1:024d}": "127.0.0.1",
        f"{2:024d}": "127.0.0.1",
    }


def test_the_client_address_comes_through_trusted_proxies_only() -> None:
    networks = trusted_networks("10.0.0.0/8, 127.0.0.1")

    def scope(peer: str, forwarded: str | None = None) -> dict[str, Any]:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"client": (peer, 1234), "headers": headers}

    assert client_address(scope("203.0.113.9", "1.2.3.4"), networks) == "203.0.113.9"
    assert client_address(scope("10.1.2.3", "1.2.3.4, 10.0.0.7"), networks) == "1.2.3.4"
    # The left-most entries are the client's to forge: the first untrusted from the right wins.
    assert client_address(scope("127.0.0.1", "6.6.6.6, 1.2.3.4"), networks) == "1.2.3.4"
    assert client_address(scope("127.0.0.1"), networks) == "127.0.0.1"
    assert client_address({"headers": []}, networks) is None
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        trusted_networks("10.0.0.0/8, not-an-ip")
    with pytest.raises(ValueError, match="not-an-ip"):
        Settings(_env_file=None, trusted_proxies="not-an-ip")


def test_only_ip_addresses_are_believed_from_x_forwarded_for() -> None:
    networks = trusted_networks("10.0.0.0/8, 127.0.0.1")

    def scope(peer: str, forwarded: str) -> dict[str, Any]:
        return {"client": (peer, 1234), "headers": [(b"x-forwarded-for", forwarded.encode())]}

    assert client_address(scope("10.0.0.1", "192.0.2.7:8080"), networks) == "192.0.2.7"
    assert client_address(scope("10.0.0.1", "[2001:db8::1]"), networks) == "2001:db8::1"
    assert client_address(scope("10.0.0.1", "2001:DB8::A"), networks) == "2001:db8::a"
    for garbage in ("<script>", "x" * 2000, "unknown", "evil.example", "192.0.2.7:http",
                    "[2001:db8::1", "[2001:db8::1]x", "fe80::1%eth0", "1.2.3.4:", "1.2.3.4:²"):  # fmt: skip
        assert client_address(scope("10.0.0.1", garbage), networks) == "10.0.0.1", garbage
        # Entries left of one that is not an address are not believed either.
        assert client_address(scope("10.0.0.1", f"192.0.2.7, {garbage}"), networks) == "10.0.0.1"
    # Trusted hops are skipped; all trusted: the left-most.
    assert client_address(scope("10.0.0.1", "192.0.2.7, 10.9.9.9"), networks) == "192.0.2.7"
    assert client_address(scope("10.0.0.1", "10.1.1.1, 10.9.9.9"), networks) == "10.1.1.1"
    # A peer that is not an IP address is not recorded, nor is anything it forwards.
    assert client_address(scope("testclient", "192.0.2.7"), networks) is None
