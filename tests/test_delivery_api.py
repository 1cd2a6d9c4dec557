"""Delivery through the product: schedules with recipients and webhooks, the executor's commit
planning the outbox, the delivery link endpoint, resend, on-demand notify, SSRF refusals and
an SMTP outage. Real servers only (aiosmtpd mailbox, an HTTP receiver, MongoDB, Redis)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from beanie import PydanticObjectId

from app.audit.models import AuditEvent
from app.common.time import utcnow
from app.main import create_app
from app.reports.deliveries import service
from app.reports.deliveries.links import issue_link_token
from app.reports.deliveries.models import Audience, DeliveryStatus, Recipient, ReportDelivery
from app.reports.deliveries.sender import send_due
from app.reports.deliveries.signing import verify
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.schedules import runner
from app.reports.schedules.models import ReportSchedule
from app.reports.schedules.scheduler import run_due_schedules
from app.runtime.resources import Resources
from scripts.mail_server import FileMailbox
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.deliveries import (
    CONNECTIONS,
    Mailbox,
    Receiver,
    delivery_people,
    run_now_and_send,
    schedule_body,
    send_planned,
)
from tests.helpers.processes import free_port
from tests.helpers.schedules import at, schedule_for
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"
JOBS = "/api/v1/reports/jobs"
LINK = re.compile(r"https://reports\.example(/api/v1/reports/deliveries/\S+)")


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **extra: Any) -> Any:
    response = await client.post(SCHEDULES, json=schedule_body(**extra), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_run_reaches_every_recipient_and_the_run_history_shows_it_sent(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
    http_receiver: Receiver,
) -> None:
    people = await delivery_people(auth)
    ann, ben, headers = people.ann, people.ben, people.headers
    created = await delivery_client.post(
        SCHEDULES,
        json=schedule_body(
            recipients=[str(ann.id), str(ben.id), "partner@example.org"],
            delivery="both",
            webhooks=[{"url": http_receiver.url()}],
        ),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["recipients"] == [str(ann.id), str(ben.id), "partner@example.org"]
    [hook] = schedule["webhooks"]
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    again = await delivery_client.get(f"{SCHEDULES}/{schedule['id']}", headers=headers)
    assert again.json()["webhooks"][0]["secret"] is None  # shown once

    run = await delivery_client.post(f"{SCHEDULES}/{schedule['id']}/run-now", headers=headers)
    assert run.status_code == 202, run.text
    await run_worker()
    await send_planned(delivery_resources)

    page = (await delivery_client.get(f"{SCHEDULES}/{schedule['id']}/runs", headers=headers)).json()
    [item] = page["items"]
    assert item["status"] == "completed"
    assert sorted(d["recipient"] for d in item["deliveries"]) == sorted(
        ["ann@example.test", "ben@example.test", "partner@example.org", http_receiver.url()]
    )
    assert {d["status"] for d in item["deliveries"]} == {"sent"}

    messages = smtp_server.messages()
    assert sorted(m["To"] for m in messages) == [
        "ann@example.test",
        "ben@example.test",
        "partner@example.org",
    ]
    assert all(m["Subject"] == "Report: Weekly progress" for m in messages)
    [call] = http_receiver.requests
    assert verify(secret, call.headers, call.body).startswith("msg_")


async def test_the_delivery_link_downloads_for_its_recipient_only_until_deleted(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
) -> None:
    people = await delivery_people(auth)
    ann, headers = people.ann, people.headers
    schedule = await _create(delivery_client, headers, recipients=[str(ann.id)], delivery="link")
    await run_now_and_send(delivery_client, headers, schedule["id"], run_worker, delivery_resources)
    [message] = smtp_server.messages()
    assert not list(message.iter_attachments())  # link mode
    text = str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    match = LINK.search(text)
    assert match, text
    path = match.group(1)

    file = await delivery_client.get(path)  # no bearer token: the link is the credential
    assert file.status_code == 200, file.text
    assert "Lars Learner" in file.content.decode("utf-8-sig")
    assert file.headers["cache-control"] == "no-store"
    # Its use is audited, but the token (a credential while valid) is never written down.
    [used] = await AuditEvent.find({"action": "delivery-link.used"}).to_list()
    token = path.rsplit("/", 1)[1]
    assert used.path == "/api/v1/reports/deliveries/<token>"
    assert token not in used.model_dump_json()

    # The same delivery's link issued to someone else, and a forged one: not a link.
    [delivery] = await ReportDelivery.find_all().to_list()
    settings = delivery_resources.settings
    other = issue_link_token(
        settings,
        delivery_id=str(delivery.id),
        recipient="email:eve@example.org",
        expires_at=utcnow() + timedelta(days=1),
    )
    assert (await delivery_client.get(f"/api/v1/reports/deliveries/{other}")).status_code == 404
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert (await delivery_client.get(forged)).status_code == 404

    # It expires: the link's own expiry (7 days, capped by the file's retention).
    token = path.rsplit("/", 1)[1]
    with pytest.raises(Exception) as expired:
        await service.open_link(settings, token, now=utcnow() + timedelta(days=400))
    assert getattr(expired.value, "status", None) == 410

    deleted = await delivery_client.delete(f"{SCHEDULES}/{schedule['id']}", headers=headers)
    assert deleted.status_code == 204
    gone = await delivery_client.get(path)
    assert gone.status_code == 410 and gone.json()["code"] == "delivery-link-revoked"


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://localhost:{port}/"],
)
async def test_private_webhook_urls_are_refused_on_create_without_a_connection(
    client: httpx.AsyncClient, auth: TokenFactory, http_receiver: Receiver, url: str
) -> None:
    headers = (await delivery_people(auth)).headers
    CONNECTIONS.addresses.clear()
    CONNECTIONS.active = True
    try:
        response = await client.post(
            SCHEDULES,
            json=schedule_body(webhooks=[{"url": url.format(port=http_receiver.port)}]),
            headers=headers,
        )
    finally:
        CONNECTIONS.active = False
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["body.webhooks.0.url"]
    reached = [a for a in CONNECTIONS.addresses if isinstance(a, tuple)]
    assert not [a for a in reached if a[0] in ("10.0.0.1", "169.254.169.254")], reached
    assert not [a for a in reached if a[1] == http_receiver.port], reached
    assert not http_receiver.requests


async def test_recipients_are_checked_and_a_recipient_audience_refuses_addresses(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    people = await delivery_people(auth)
    ann, headers = people.ann, people.headers
    for recipients, field in (
        (["eve@evil.example"], "body.recipients.0"),
        ([str(ann.id), "0123456789abcdef01234567"], "body.recipients.1"),
        (["x@example.org"] * 51, "body.recipients"),
    ):
        bad = await client.post(
            SCHEDULES, json=schedule_body(recipients=recipients), headers=headers
        )
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["field"] == field
    external = await client.post(
        SCHEDULES,
        json=schedule_body(recipients=[str(ann.id), "x@example.org"], audience="recipient"),
        headers=headers,
    )
    assert external.status_code == 422
    assert external.json()["errors"][0]["field"] == "body.recipients.1"


async def test_a_recipient_audience_runs_each_scope_once(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
) -> None:
    people = await delivery_people(auth)
    ann, ben, headers = people.ann, people.ben, people.headers
    dept = await f.department("Sales", code="SAL")
    cleo = await f.user("Cleo Admin", dept=dept, roles=["admin"], email="cleo@example.test")
    schedule = await _create(
        delivery_client,
        headers,
        recipients=[str(ann.id), str(ben.id), str(cleo.id)],
        audience="recipient",
    )
    await run_now_and_send(delivery_client, headers, schedule["id"], run_worker, delivery_resources)
    jobs = await ReportJob.find({"schedule_id": {"$exists": True}}).to_list()
    # Ann and Cleo are admins (one scope: all data), Ben a manager: two runs.
    assert len(jobs) == 2 and {j.status for j in jobs} == {JobStatus.COMPLETED}
    by_user = {j.requested_by.user_id: j for j in jobs}
    assert str(ben.id) in by_user
    assert sorted(m["To"] for m in smtp_server.messages()) == [
        "ann@example.test",
        "ben@example.test",
        "cleo@example.test",
    ]


async def test_resend_and_on_demand_notify_and_webhook(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
    http_receiver: Receiver,
) -> None:
    people = await delivery_people(auth)
    ann, headers = people.ann, people.headers
    unknown = await delivery_client.post(
        JOBS,
        json={
            "reportType": "learner-progress",
            "format": "csv",
            "parameters": {"dateRange": {"preset": "last-7-days"}},
            "webhookUrl": http_receiver.url(),
        },
        headers=headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "body.webhookUrl"
    hook = await delivery_client.post(
        "/api/v1/reports/webhooks", json={"url": http_receiver.url()}, headers=headers
    )
    assert hook.status_code == 201, hook.text
    secret = hook.json()["secret"]
    job = await delivery_client.post(
        JOBS,
        json={
            "reportType": "learner-progress",
            "format": "csv",
            "parameters": {"dateRange": {"preset": "last-7-days"}},
            "notify": {"email": True},
            "webhookUrl": http_receiver.url(),
        },
        headers=headers,
    )
    assert job.status_code == 202, job.text
    await run_worker()
    await send_planned(delivery_resources)
    assert [m["To"] for m in smtp_server.messages()] == ["olga@example.test"]
    [call] = http_receiver.requests
    assert verify(secret, call.headers, call.body).startswith("msg_")

    # A failed delivery goes back to the outbox: only its owner or an admin may ask.
    email = await ReportDelivery.find_one({"recipient.address": "olga@example.test"})
    assert email is not None
    await ReportDelivery.get_pymongo_collection().update_one(
        {"_id": email.id}, {"$set": {"status": "failed", "last_error": "550 mailbox full"}}
    )
    other = auth("manager", sub=str(ann.id), name="Ann")
    denied = await delivery_client.post(
        f"/api/v1/reports/deliveries/{email.id}/resend", headers=other
    )
    assert denied.status_code == 403
    again = await delivery_client.post(
        f"/api/v1/reports/deliveries/{email.id}/resend", headers=headers
    )
    assert again.status_code == 202 and again.json()["status"] == "pending"
    await send_planned(delivery_resources)
    copies = [m for m in smtp_server.messages() if m["To"] == "olga@example.test"]
    assert len(copies) == 2 and copies[0]["Message-ID"] == copies[1]["Message-ID"]

    rotated = await delivery_client.post(
        f"/api/v1/reports/webhooks/{hook.json()['id']}/rotate", headers=headers
    )
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (None, secret)
    options = await delivery_client.get(
        "/api/v1/reports/metadata/delivery-options", headers=headers
    )
    assert [m["code"] for m in options.json()["modes"]] == ["attach", "link", "both"]


async def test_smtp_down_then_back_deliveries_go_out_while_jobs_keep_completing(
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    tmp_path: Any,
) -> None:
    people = await delivery_people(auth)
    ann, headers = people.ann, people.headers
    port = free_port()  # nothing listens yet: the SMTP server is down
    settings = delivery_resources.settings.model_copy(
        update={"smtp_port": port, "delivery_backoff_seconds": 1.0, "smtp_timeout_seconds": 2.0}
    )
    res = dataclasses.replace(delivery_resources, settings=settings)
    application = create_app(settings, resources=res)
    async with application.router.lifespan_context(application), api_client(application) as c:
        schedule = await _create(c, headers, recipients=[str(ann.id)])
        await c.post(f"{SCHEDULES}/{schedule['id']}/run-now", headers=headers)
        await run_worker()
        await send_due(res, worker_id="test-sender")
        [pending] = await ReportDelivery.find_all().to_list()
        assert pending.status == DeliveryStatus.PENDING and pending.last_error

        # Meanwhile report jobs keep completing.
        await c.post(f"{SCHEDULES}/{schedule['id']}/run-now", headers=headers)
        await run_worker()
        jobs = await ReportJob.find_all().to_list()
        assert [j.status for j in jobs] == [JobStatus.COMPLETED] * 2

        controller = Controller(FileMailbox(tmp_path / "back"), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            later = utcnow() + timedelta(minutes=5)
            await send_due(res, worker_id="test-sender", now=later)
            stored = await ReportDelivery.find_all().to_list()
            assert {d.status for d in stored} == {DeliveryStatus.SENT}
            assert len(Mailbox(tmp_path / "back", port).messages()) == 2
        finally:
            controller.stop()


async def test_a_schedule_that_pauses_itself_tells_its_owner_why_and_how_to_resume(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    smtp_server: Mailbox,
) -> None:
    people = await delivery_people(auth)
    ann, headers = people.ann, people.headers
    created = await delivery_client.post(
        SCHEDULES, json=schedule_body(recipients=[str(ann.id)]), headers=headers
    )
    schedule = await ReportSchedule.get(created.json()["id"])
    assert schedule is not None
    reason = "Paused after 3 consecutive failed runs."
    assert await runner.pause_for(delivery_resources.settings, schedule, reason)
    await send_planned(delivery_resources)
    [message] = smtp_server.messages()
    assert message["To"] == "olga@example.test"
    assert message["Subject"] == "Weekly progress: the schedule paused itself"
    text = str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert reason in text and f"/schedules/{schedule.id}/resume" in text


async def test_a_scheduled_run_failing_for_good_tells_the_owner_in_its_commit(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
) -> None:
    people = await delivery_people(auth)
    ann, headers = people.ann, people.headers
    schedule = await _create(delivery_client, headers, recipients=[str(ann.id)])
    run = (
        await delivery_client.post(f"{SCHEDULES}/{schedule['id']}/run-now", headers=headers)
    ).json()
    # The report type disappears before the worker runs it: a failure no retry can fix.
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": PydanticObjectId(run["id"])}, {"$set": {"report_type": "no-such-type"}}
    )
    await run_worker()
    job = await ReportJob.get(run["id"])
    assert job is not None and job.status == JobStatus.FAILED
    [notice] = await ReportDelivery.find({"job_id": job.id}).to_list()
    assert notice.kind == "notice" and notice.recipient.address == "olga@example.test"
    await send_planned(delivery_resources)
    [message] = smtp_server.messages()
    assert message["Subject"] == "Weekly progress: the scheduled run failed"


async def test_updating_webhooks_keeps_known_urls_and_shows_only_new_secrets(
    delivery_client: httpx.AsyncClient, auth: TokenFactory, http_receiver: Receiver
) -> None:
    headers = (await delivery_people(auth)).headers
    first, second = http_receiver.url("/a"), http_receiver.url("/b")
    created = await _create(delivery_client, headers, webhooks=[{"url": first}])
    [kept] = created["webhooks"]
    updated = await delivery_client.patch(
        f"{SCHEDULES}/{created['id']}",
        json={"webhooks": [{"url": first}, {"url": second}], "emptyResult": "skip"},
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    hooks = updated.json()["webhooks"]
    assert [h["url"] for h in hooks] == [first, second]
    assert hooks[0]["id"] == kept["id"] and hooks[0]["secret"] is None
    assert hooks[1]["secret"].startswith("whsec_")
    assert updated.json()["emptyResult"] == "skip"
    bad = await delivery_client.patch(
        f"{SCHEDULES}/{created['id']}", json={"delivery": None}, headers=headers
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.delivery"


async def test_a_recipient_audience_slot_makes_one_job_per_scope_under_concurrent_ticks(
    resources: Resources,
) -> None:
    dept = await f.department("Finance", code="FIN")
    owner = await f.user("Olga Owner", dept=dept, roles=["admin"], email="olga@example.test")
    ann = await f.user("Ann Admin", dept=dept, roles=["admin"], email="ann@example.test")
    ben = await f.user("Ben Boss", dept=dept, roles=["manager"], email="ben@example.test")
    slot = at(2026, 12, 1, 9)
    schedule = await schedule_for(
        owner,
        slot,
        audience=Audience.RECIPIENT,
        recipients=[str(ann.id), str(ben.id)],
        delivery_recipients=[Recipient(user_id=str(u.id), address=u.email) for u in (ann, ben)],
    )
    now = slot + timedelta(seconds=5)
    await asyncio.gather(*(run_due_schedules(resources, now=now) for _ in range(3)))
    jobs = await ReportJob.find({"schedule_id": schedule.id}).sort("scheduled_for").to_list()
    assert len(jobs) == 2 and {j.requested_by.user_id for j in jobs} == {str(ann.id), str(ben.id)}
    assert [j.scheduled_for for j in jobs] == [slot, slot + timedelta(milliseconds=1)]
    assert all(j.delivery and len(j.delivery.recipients) == 1 for j in jobs)


async def test_delivery_actions_are_in_the_audit_trail(
    delivery_client: httpx.AsyncClient, auth: TokenFactory, http_receiver: Receiver
) -> None:
    headers = (await delivery_people(auth)).headers
    hook = await delivery_client.post(
        "/api/v1/reports/webhooks", json={"url": http_receiver.url()}, headers=headers
    )
    await delivery_client.post(
        f"/api/v1/reports/webhooks/{hook.json()['id']}/rotate", headers=headers
    )
    actions = [e.action for e in await AuditEvent.find_all().sort("created_at").to_list()]
    assert actions == ["webhook.created", "webhook.rotated"]


async def test_who_is_told_is_part_of_an_idempotent_request(
    delivery_client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    people = await delivery_people(auth)
    body: dict[str, Any] = {
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "last-7-days"}},
        "notify": {"email": True},
    }
    headers = {**people.headers, "Idempotency-Key": "told-once"}
    first = await delivery_client.post(JOBS, json=body, headers=headers)
    assert first.status_code == 202, first.text
    replay = await delivery_client.post(JOBS, json=body, headers=headers)
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    untold = {k: v for k, v in body.items() if k != "notify"}
    other = await delivery_client.post(JOBS, json=untold, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "idempotency-key-reused"
