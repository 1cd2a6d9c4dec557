"""Self-service and governance of recipients, through the product against the real servers:
the one-click unsubscribe of every schedule e-mail (RFC 8058), its confirmation page, the
owner's re-invite, the owner's daily summary, what one person receives (admins) and platform
users deactivated after a schedule listed them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId

from app.audit.models import AuditEvent
from app.common.time import utcnow
from app.main import create_app
from app.platform.models import User
from app.reports.deliveries.models import DeliveryStatus, ReportDelivery
from app.reports.deliveries.sender import send_due
from app.reports.schedules.digest import send_unsubscribe_digests
from app.runtime.resources import Resources
from tests.helpers.api import api_client
from tests.helpers.deliveries import Mailbox, delivery_people, schedule_body
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"
BASE = "https://reports.example"


@pytest.fixture
async def client(delivery_resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as c:
        yield c


async def _run(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    schedule_id: str,
    run_worker: Callable[..., Any],
    resources: Resources,
) -> None:
    run = await client.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=headers)
    assert run.status_code == 202, run.text
    await run_worker()
    for _ in range(3):
        await send_due(resources, worker_id="test-sender")


def _by_address(messages: list[EmailMessage]) -> dict[str, EmailMessage]:
    return {str(m["To"]): m for m in messages}


def _one_click_path(message: EmailMessage) -> str:
    header = str(message["List-Unsubscribe"])
    match = re.fullmatch(r"<(https://\S+)>", header)
    assert match, header
    assert match.group(1).startswith(f"{BASE}/api/v1/reports/unsubscribe/")
    return match.group(1).removeprefix(BASE)


async def test_one_click_unsubscribe_removes_exactly_that_recipient_once_and_for_good(
    client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
) -> None:
    people = await delivery_people(auth)
    ann, ben, headers = people.ann, people.ben, people.headers
    created = await client.post(
        SCHEDULES,
        json=schedule_body(recipients=[str(ann.id), str(ben.id), "partner@example.org"]),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    await _run(client, headers, schedule_id, run_worker, delivery_resources)
    first = _by_address(smtp_server.messages())
    assert sorted(first) == ["ann@example.test", "ben@example.test", "partner@example.org"]
    for message in first.values():
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    ben_path = _one_click_path(first["ben@example.test"])
    partner_path = _one_click_path(first["partner@example.org"])
    assert ben_path != partner_path  # per recipient

    # Opening the link (a person, or a mail scanner) shows a page and changes nothing.
    page = await client.get(ben_path, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert '<form method="post">' in page.text and "ben@example.test" in page.text
    assert "Weekly progress" in page.text
    still = (await client.get(f"{SCHEDULES}/{schedule_id}", headers=headers)).json()
    assert str(ben.id) in still["recipients"] and still["unsubscribed"] == []

    # A tampered link is a 404 (a problem, or a page for a browser) and removes nobody.
    head, _, signature = ben_path.rpartition(".")
    tampered = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    refused = await client.post(tampered, content=b"List-Unsubscribe=One-Click")
    assert refused.status_code == 404
    assert refused.json()["code"] == "unsubscribe-link-invalid"
    browser = await client.get(tampered, headers={"Accept": "text/html"})
    assert browser.status_code == 404 and "does not work" in browser.text

    # The one-click POST as a mail program sends it, twice.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for _ in range(2):
        done = await client.post(ben_path, content=b"List-Unsubscribe=One-Click", headers=form)
        assert done.status_code == 200, done.text
        assert "You are unsubscribed" in done.text
    shown = (await client.get(f"{SCHEDULES}/{schedule_id}", headers=headers)).json()
    assert shown["recipients"] == [str(ann.id), "partner@example.org"]
    [left] = shown["unsubscribed"]
    assert left["userId"] == str(ben.id) and left["address"] == "ben@example.test"
    audited = await AuditEvent.find({"action": "schedule.unsubscribed"}).to_list()
    assert [(e.object_id, e.details["recipient"]) for e in audited] == [
        (schedule_id, "ben@example.test")
    ]

    # The next run skips them.
    smtp_server.clear()
    await _run(client, headers, schedule_id, run_worker, delivery_resources)
    assert sorted(_by_address(smtp_server.messages())) == [
        "ann@example.test",
        "partner@example.org",
    ]

    # Listing them again is refused, naming them; re-inviting them on purpose works.
    again = [str(ann.id), str(ben.id), "partner@example.org"]
    relisted = await client.patch(
        f"{SCHEDULES}/{schedule_id}", json={"recipients": again}, headers=headers
    )
    assert relisted.status_code == 422, relisted.text
    [error] = relisted.json()["errors"]
    assert error["field"] == "body.recipients.1" and error["type"] == "unsubscribed"
    assert "reinvite" in error["message"]
    invited = await client.patch(
        f"{SCHEDULES}/{schedule_id}",
        json={"recipients": again, "reinvite": ["ben@example.test"]},
        headers=headers,
    )
    assert invited.status_code == 200, invited.text
    assert invited.json()["recipients"] == again and invited.json()["unsubscribed"] == []


async def test_the_owner_gets_one_summary_a_day_not_one_mail_per_click(
    client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
) -> None:
    people = await delivery_people(auth)
    headers = people.headers
    recipients = [str(people.ann.id), str(people.ben.id), "partner@example.org"]
    created = await client.post(
        SCHEDULES, json=schedule_body(recipients=recipients), headers=headers
    )
    schedule_id = created.json()["id"]
    await _run(client, headers, schedule_id, run_worker, delivery_resources)
    paths = {to: _one_click_path(m) for to, m in _by_address(smtp_server.messages()).items()}
    smtp_server.clear()
    settings = delivery_resources.settings

    async def summaries(now_offset: timedelta) -> list[EmailMessage]:
        now = utcnow() + now_offset
        await send_unsubscribe_digests(settings, now)
        for _ in range(2):
            await send_due(delivery_resources, worker_id="test-sender", now=now)
        sent = smtp_server.messages()
        smtp_server.clear()
        return sent

    assert (await client.post(paths["ben@example.test"])).status_code == 200
    assert (await client.post(paths["partner@example.org"])).status_code == 200
    [summary] = await summaries(timedelta(0))
    assert summary["To"] == "olga@example.test"
    assert summary["Subject"] == "Weekly progress: recipients unsubscribed"
    assert "List-Unsubscribe" not in summary  # the owner's own notice
    text = str(summary.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert "- ben@example.test (" in text and "- partner@example.org (" in text
    assert await summaries(timedelta(hours=1)) == []  # nothing new: nothing sent

    # A run whose message to Ann still waits in the outbox when she unsubscribes.
    run = await client.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=headers)
    assert run.status_code == 202, run.text
    await run_worker()
    assert (await client.post(paths["ann@example.test"])).status_code == 200
    assert await summaries(timedelta(hours=2)) == []  # not sent to Ann; the summary waits
    [waiting] = await ReportDelivery.find({"job_id": PydanticObjectId(run.json()["id"])}).to_list()
    assert waiting.status == DeliveryStatus.CANCELLED
    assert waiting.last_error == "the recipient unsubscribed from the schedule"
    [next_day] = await summaries(timedelta(days=1, minutes=5))
    text = str(next_day.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert "- ann@example.test (" in text and "ben@example.test" not in text


async def test_admins_see_what_one_person_receives(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    people = await delivery_people(auth)
    ben, headers = people.ben, people.headers
    by_id = await client.post(
        SCHEDULES, json=schedule_body(name="By id", recipients=[str(ben.id)]), headers=headers
    )
    by_address = await client.post(
        SCHEDULES,
        json=schedule_body(name="By address", recipients=["Ben@Example.test"], timeOfDay="06:00"),
        headers=headers,
    )
    other = await client.post(
        SCHEDULES,
        json=schedule_body(name="Not Ben", recipients=[str(people.ann.id)]),
        headers=headers,
    )
    assert {r.status_code for r in (by_id, by_address, other)} == {201}

    for who in (str(ben.id), "ben@example.test"):
        answer = await client.get(
            f"/api/v1/reports/recipients/{who}/subscriptions", headers=headers
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["person"] == {
            "userId": str(ben.id),
            "address": "ben@example.test",
            "name": "Ben Boss",
            "active": True,
        }
        assert [(i["scheduleName"], i["channel"]) for i in body["items"]] == [
            ("By address", "email"),
            ("By id", "email"),
        ]
        [item] = [i for i in body["items"] if i["scheduleName"] == "By id"]
        assert item["nextRunAt"] == by_id.json()["nextRunAt"]
        assert item["reportType"] == "learner-progress" and item["listedAs"] == str(ben.id)

    manager = auth("manager", sub=str(ben.id), name="Ben Boss")
    denied = await client.get(f"/api/v1/reports/recipients/{ben.id}/subscriptions", headers=manager)
    assert denied.status_code == 403 and denied.json()["code"] == "admin-required"
    unknown = await client.get(
        "/api/v1/reports/recipients/not-an-address/subscriptions", headers=headers
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "recipient-not-found"


@pytest.mark.parametrize("audience", ["owner", "recipient"])
async def test_a_deactivated_user_is_skipped_and_listed_on_the_run(
    audience: str,
    client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
) -> None:
    people = await delivery_people(auth)
    headers = people.headers
    created = await client.post(
        SCHEDULES,
        json=schedule_body(recipients=[str(people.ann.id), str(people.ben.id)], audience=audience),
        headers=headers,
    )
    schedule_id = created.json()["id"]
    await User.find_one(User.id == people.ben.id).update({"$set": {"status": "inactive"}})

    await _run(client, headers, schedule_id, run_worker, delivery_resources)
    assert [m["To"] for m in smtp_server.messages()] == ["ann@example.test"]
    [run] = (await client.get(f"{SCHEDULES}/{schedule_id}/runs", headers=headers)).json()["items"]
    assert run["skippedRecipients"] == [
        {
            "userId": str(people.ben.id),
            "address": "ben@example.test",
            "reason": "inactive",
            "departmentId": None,
            "departmentName": None,
        }
    ]
    assert [d["recipient"] for d in run["deliveries"]] == ["ann@example.test"]
    # Still on the schedule: reactivated, they receive the next run again.
    shown = (await client.get(f"{SCHEDULES}/{schedule_id}", headers=headers)).json()
    assert str(people.ben.id) in shown["recipients"]
    answer = await client.get(
        f"/api/v1/reports/recipients/{people.ben.id}/subscriptions", headers=headers
    )
    assert answer.json()["person"]["active"] is False
