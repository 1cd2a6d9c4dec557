"""The delivery outbox end to end against real servers: aiosmtpd for e-mail and an HTTP
receiver for webhooks, both on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from beanie import PydanticObjectId

from app.errors import Conflict, Forbidden, Gone, NotFound
from app.reports.deliveries import repository, service
from app.reports.deliveries.links import issue_link_token, verify_link_token
from app.reports.deliveries.models import (
    DeliveryConfig,
    DeliveryMode,
    DeliveryStatus,
    EmptyResultPolicy,
    Recipient,
    ReportDelivery,
    WebhookEndpoint,
)
from app.reports.deliveries.planning import (
    commit_with_deliveries,
    plan_deliveries,
    plan_notice,
)
from app.reports.deliveries.sender import run_sender, send_due
from app.reports.deliveries.signing import generate_secret, verify
from app.reports.jobs.models import ReportJob
from app.reports.rendering import ColumnType, Figure
from app.runtime.resources import Resources
from scripts.mail_server import FileMailbox
from scripts.mailbox import read
from tests.helpers.deliveries import (
    CONNECTIONS,
    NOW,
    Mailbox,
    Receiver,
    completed_job,
)
from tests.helpers.processes import free_port

ANN = Recipient(user_id="u-ann", address="ann@school.example")
BOB = Recipient(address="bob@partner.example")


async def _endpoint(url: str, secret: str | None = None) -> WebhookEndpoint:
    return await repository.create_endpoint(
        owner_user_id="owner-1", url=url, secret=secret or generate_secret()
    )


async def _plan(
    res: Resources,
    job: ReportJob,
    *,
    recipients: list[Recipient],
    endpoints: list[WebhookEndpoint] = (),  # type: ignore[assignment]
    mode: DeliveryMode = DeliveryMode.BOTH,
    empty: EmptyResultPolicy = EmptyResultPolicy.SEND,
) -> list[ReportDelivery]:
    config = DeliveryConfig(
        mode=mode,
        empty_result=empty,
        recipients=recipients,
        webhook_endpoint_ids=[e.id for e in endpoints if e.id],
    )
    planned = plan_deliveries(
        job,
        config,
        endpoints,
        res.settings,
        report_name="Monthly progress",
        figures=[
            Figure("learners", "Learners", 42, ColumnType.INTEGER, "Distinct learners"),
            Figure("completionRate", "Completion rate", 73.5, ColumnType.PERCENT, RATE),
        ],
        now=NOW,
    )
    await repository.insert_many(planned)
    return planned


RATE = "Completed ÷ (enrolled − withdrawn), as a percentage"


def _text(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


async def test_every_recipient_gets_one_message_and_the_webhook_one_signed_call(
    delivery_resources: Resources, smtp_server: Mailbox, http_receiver: Receiver
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    secret = generate_secret()
    endpoint = await _endpoint(http_receiver.url(), secret)
    planned = await _plan(res, job, recipients=[ANN, BOB], endpoints=[endpoint])
    assert len(planned) == 3

    assert await send_due(res, worker_id="w1", now=NOW) == 3
    assert await send_due(res, worker_id="w1", now=NOW + timedelta(hours=1)) == 0

    messages = smtp_server.messages()
    assert sorted(m["To"] for m in messages) == ["ann@school.example", "bob@partner.example"]
    by_address = {d.recipient.address: d for d in planned}
    for message in messages:
        delivery = by_address[message["To"]]
        assert message["Message-ID"] == f"<{delivery.id}@school.example>"
        assert message["Subject"] == "Report: Monthly progress"
        text = _text(message)
        assert "Period: 2026-11-01 – 2026-11-30 (Europe/Berlin)" in text
        assert "Completion rate: 73.5%" in text
        assert f"Completion rate: {RATE}" in text.split("What these figures mean:")[1]
        assert message.get_body(preferencelist=("html",)) is not None
        [attachment] = list(message.iter_attachments())
        assert attachment.get_filename() == "learner-progress.csv"
        assert attachment.get_content() in ("a,b\n1,2\n", b"a,b\n1,2\n")
        link = next(line for line in text.splitlines() if line.startswith("Download: "))
        token = link.removeprefix("Download: https://reports.example/api/v1/reports/deliveries/")
        claims = verify_link_token(res.settings, token, now=NOW)
        assert claims.delivery_id == str(delivery.id)
        assert claims.recipient == delivery.recipient.key()
        assert claims.expires_at == job.expires_at  # the file's retention caps the link

    [call] = http_receiver.requests
    webhook = next(d for d in planned if d.recipient.endpoint_id)
    assert verify(secret, call.headers, call.body) == f"msg_{webhook.id}"
    data = json.loads(call.body)["data"]
    assert data["jobId"] == str(job.id) and data["scheduleId"] == str(job.schedule_id)
    assert data["rowCount"] == 1 and data["sha256"] == job.result.checksum_sha256  # type: ignore[union-attr]
    assert data["period"]["timezone"] == "Europe/Berlin"
    assert data["downloadUrl"].startswith("https://reports.example/api/v1/reports/deliveries/")

    stored = await repository.for_job(job.id)  # type: ignore[arg-type]
    assert {d.status for d in stored} == {DeliveryStatus.SENT}
    assert all(d.attempts == 1 and d.sent_at == NOW for d in stored)
    hook = next(d for d in stored if d.recipient.endpoint_id)
    assert hook.http_status == 200 and len(hook.response_excerpt or "") == 200
    assert all(d.provider_message_id for d in stored if d.recipient.address)


async def test_large_files_go_as_a_link_and_attach_mode_sends_no_link(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    small = await completed_job(res)
    # Random hex: its zip (about half of it) is still over the limit, so it goes as a link.
    big = await completed_job(res, content=secrets.token_hex(2048).encode())
    res.settings.delivery_attachment_max_mb = 1024 / 1_048_576  # 1 KB
    await _plan(res, small, recipients=[ANN], mode=DeliveryMode.ATTACH)
    await _plan(res, big, recipients=[BOB], mode=DeliveryMode.ATTACH)
    assert await send_due(res, worker_id="w1", now=NOW) == 2
    by_to = {m["To"]: m for m in smtp_server.messages()}
    attached = by_to["ann@school.example"]
    assert len(list(attached.iter_attachments())) == 1
    assert "Download:" not in _text(attached)
    linked = by_to["bob@partner.example"]
    assert list(linked.iter_attachments()) == []
    assert "too large to attach" in _text(linked) and "Download: https://" in _text(linked)


async def test_empty_results_follow_the_schedule_policy(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    empty = await completed_job(res, content=b"a,b\n", rows=0)
    assert await _plan(res, empty, recipients=[ANN], empty=EmptyResultPolicy.SKIP) == []
    await _plan(res, empty, recipients=[ANN], empty=EmptyResultPolicy.NOTICE)
    await send_due(res, worker_id="w1", now=NOW)
    [message] = smtp_server.messages()
    assert message["Subject"] == "Monthly progress: no rows this period"
    assert list(message.iter_attachments()) == [] and "Download:" not in _text(message)


async def test_smtp_down_retries_with_backoff_then_sends(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    [planned] = await _plan(res, job, recipients=[ANN])
    up = res.settings.smtp_port
    res.settings.smtp_port = 1  # nothing listens there: connection refused
    assert await send_due(res, worker_id="w1", now=NOW) == 1
    waiting = await repository.get(planned.id)  # type: ignore[arg-type]
    assert waiting and waiting.status == DeliveryStatus.PENDING and waiting.attempts == 1
    assert "SMTP server unreachable" in (waiting.last_error or "")
    # back-off 10 s with jitter: between 5 and 10 s
    delay = (waiting.next_attempt_at - NOW).total_seconds()
    assert 5 <= delay <= 10
    assert await send_due(res, worker_id="w1", now=NOW + timedelta(seconds=4)) == 0

    res.settings.smtp_port = up
    assert await send_due(res, worker_id="w1", now=NOW + timedelta(seconds=11)) == 1
    sent = await repository.get(planned.id)  # type: ignore[arg-type]
    assert sent and sent.status == DeliveryStatus.SENT and sent.attempts == 2
    assert len(smtp_server.messages()) == 1


async def test_gives_up_after_the_attempt_limit_with_the_reason(
    delivery_resources: Resources,
) -> None:
    res = delivery_resources
    res.settings.smtp_port = 1
    job = await completed_job(res)
    [planned] = await _plan(res, job, recipients=[ANN])
    clock = NOW
    for _ in range(3):
        assert await send_due(res, worker_id="w1", now=clock) == 1
        clock += timedelta(minutes=5)
    failed = await repository.get(planned.id)  # type: ignore[arg-type]
    assert failed and failed.status == DeliveryStatus.FAILED and failed.attempts == 3
    assert (failed.last_error or "").startswith("gave up after 3 attempts; last error: SMTP")
    assert await send_due(res, worker_id="w1", now=clock) == 0

    assert await repository.resend(planned.id, max_attempts=3, now=clock)  # type: ignore[arg-type]
    assert await send_due(res, worker_id="w1", now=clock) == 1  # still down: retried, not lost
    again = await repository.get(planned.id)  # type: ignore[arg-type]
    assert again and again.status == DeliveryStatus.PENDING and again.attempts == 1


async def test_a_crash_between_send_and_record_resends_with_the_same_id(
    delivery_resources: Resources, smtp_server: Mailbox, http_receiver: Receiver
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    endpoint = await _endpoint(http_receiver.url())
    planned = await _plan(res, job, recipients=[ANN], endpoints=[endpoint])
    assert await send_due(res, worker_id="w1", now=NOW) == 2
    # The record was lost: as if the sender died after sending, its lease still running.
    await ReportDelivery.get_pymongo_collection().update_many(
        {}, {"$set": {"status": "sending", "lease_expires_at": NOW + timedelta(seconds=120)}}
    )
    assert await send_due(res, worker_id="w2", now=NOW + timedelta(seconds=60)) == 0
    assert await send_due(res, worker_id="w2", now=NOW + timedelta(seconds=121)) == 2
    first, second = smtp_server.messages()
    assert first["Message-ID"] == second["Message-ID"]
    assert [r.headers["webhook-id"] for r in http_receiver.requests] == [
        f"msg_{d.id}" for d in planned if d.recipient.endpoint_id
    ] * 2
    for delivery in await repository.for_job(job.id):  # type: ignore[arg-type]
        assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 2


async def test_concurrent_senders_send_each_delivery_once(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    people = [Recipient(address=f"p{i}@school.example") for i in range(12)]
    await _plan(res, job, recipients=people)
    counts = await asyncio.gather(
        *(send_due(res, worker_id=f"w{i}", now=NOW, limit=50) for i in range(3))
    )
    assert sum(counts) == 12
    messages = smtp_server.messages()
    assert len(messages) == 12 and len({m["Message-ID"] for m in messages}) == 12


async def test_webhook_errors_retry_gone_disables_and_redirects_are_not_followed(
    delivery_resources: Resources, http_receiver: Receiver
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    flaky = await _endpoint(http_receiver.url("/flaky"))
    [delivery] = await _plan(res, job, recipients=[], endpoints=[flaky])
    http_receiver.statuses = [503]
    await send_due(res, worker_id="w1", now=NOW)
    retried = await repository.get(delivery.id)  # type: ignore[arg-type]
    assert retried and retried.status == DeliveryStatus.PENDING and retried.http_status == 503
    await send_due(res, worker_id="w1", now=NOW + timedelta(minutes=1))
    assert (await repository.get(delivery.id)).status == DeliveryStatus.SENT  # type: ignore[arg-type,union-attr]

    moved = await _endpoint(http_receiver.url("/moved"))
    http_receiver.statuses = [302]
    http_receiver.extra_headers = {"location": http_receiver.url("/elsewhere")}
    [redirected] = await _plan(res, job, recipients=[], endpoints=[moved])
    await send_due(res, worker_id="w1", now=NOW + timedelta(minutes=1))
    failed = await repository.get(redirected.id)  # type: ignore[arg-type]
    assert failed and failed.status == DeliveryStatus.FAILED and failed.http_status == 302
    assert [r.path for r in http_receiver.requests][-1] == "/moved"  # not followed
    http_receiver.extra_headers = {}

    gone = await _endpoint(http_receiver.url("/gone"))
    await _plan(res, job, recipients=[], endpoints=[gone, gone])
    http_receiver.statuses = [410]
    assert await send_due(res, worker_id="w1", now=NOW + timedelta(minutes=2), limit=1) == 1
    stored = await WebhookEndpoint.get(gone.id)
    assert stored and stored.disabled_at is not None and "410" in (stored.disabled_reason or "")
    statuses = {
        d.id: d.status
        for d in await ReportDelivery.find({"recipient.endpoint_id": gone.id}).to_list()
    }
    assert sorted(statuses.values()) == [DeliveryStatus.CANCELLED, DeliveryStatus.FAILED]


async def test_rotated_secret_signs_twice_during_the_overlap(
    delivery_resources: Resources, http_receiver: Receiver
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    old, new = generate_secret(), generate_secret()
    endpoint = await _endpoint(http_receiver.url(), old)
    assert endpoint.id is not None
    assert await repository.add_secret(
        endpoint.id, new, overlap=timedelta(hours=1), now=NOW - timedelta(minutes=1)
    )
    await _plan(res, job, recipients=[], endpoints=[endpoint])
    # The rotation's clock and the sender's are the test's; signatures use the real time.
    await send_due(res, worker_id="w1", now=NOW)
    [call] = http_receiver.requests
    assert len(call.headers["webhook-signature"].split()) == 2
    assert verify(old, call.headers, call.body) == verify(new, call.headers, call.body)
    stored = await WebhookEndpoint.get(endpoint.id)
    assert stored and stored.signing_secrets(NOW + timedelta(hours=2)) == [new]


async def test_a_private_webhook_address_is_refused_at_send_time(
    delivery_resources: Resources,
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    endpoint = await _endpoint("http://10.0.0.1/hook")
    [delivery] = await _plan(res, job, recipients=[], endpoints=[endpoint])
    CONNECTIONS.active, CONNECTIONS.addresses = True, []
    try:
        await send_due(res, worker_id="w1", now=NOW)
    finally:
        CONNECTIONS.active = False
    stored = await repository.get(delivery.id)  # type: ignore[arg-type]
    assert stored and stored.status == DeliveryStatus.FAILED
    assert "10.0.0.1 is a private address" in (stored.last_error or "")
    assert all(address[0] in ("127.0.0.1", "::1") for address in CONNECTIONS.addresses)


async def test_failure_notice_goes_to_the_owner(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    notice = plan_notice(
        res.settings,
        recipient=Recipient(user_id="owner-1", address="owner@school.example"),
        subject="Schedule 'Monthly progress' paused",
        text="It failed 3 times in a row. Resume it with POST /api/v1/reports/schedules/{id}/resume.",
        report_name="Monthly progress",
        report_type="learner-progress",
        schedule_id=PydanticObjectId(),
        now=NOW,
    )
    await repository.insert_many([notice])
    assert await send_due(res, worker_id="w1", now=NOW) == 1
    [message] = smtp_server.messages()
    assert message["Subject"] == "Schedule 'Monthly progress' paused"
    assert "Resume it" in _text(message)


async def test_deliveries_are_committed_with_the_job_or_not_at_all(
    delivery_resources: Resources,
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    job.lease_token = "held"
    await ReportJob.get_pymongo_collection().insert_one(
        {"_id": job.id, "status": "running", "lease_token": "held"}
    )
    config = DeliveryConfig(recipients=[ANN])

    def fenced(token: str) -> Any:
        async def update(session: Any) -> bool:
            result = await ReportJob.get_pymongo_collection().update_one(
                {"_id": job.id, "lease_token": token},
                {"$set": {"status": "completed"}},
                session=session,
            )
            return bool(result.modified_count)

        return update

    stale = plan_deliveries(job, config, [], res.settings, report_name="R", now=NOW)
    assert not await commit_with_deliveries(res.database.client, fenced("lost"), stale)
    assert await ReportDelivery.find_all().count() == 0

    planned = plan_deliveries(job, config, [], res.settings, report_name="R", now=NOW)
    assert await commit_with_deliveries(res.database.client, fenced("held"), planned)
    assert await ReportDelivery.find_all().count() == 1
    stored = await ReportJob.get_pymongo_collection().find_one({"_id": job.id})
    assert stored is not None
    assert stored["status"] == "completed"


async def test_a_delivery_link_opens_for_its_recipient_until_revoked_or_expired(
    delivery_resources: Resources,
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    ann, bob = await _plan(res, job, recipients=[ANN, BOB])
    token = issue_link_token(
        res.settings,
        delivery_id=str(ann.id),
        recipient=ann.recipient.key(),
        expires_at=ann.link_expires_at,  # type: ignore[arg-type]
    )
    delivery, content = await service.open_link(res.settings, token, now=NOW)
    assert delivery.id == ann.id and content.storage_key == job.result.storage_key  # type: ignore[union-attr]
    chunks = b"".join([c async for c in await res.storage.open_stream(content.storage_key)])  # type: ignore[arg-type]
    assert chunks == b"a,b\n1,2\n"

    # Ann's delivery id with Bob's recipient key: not a link anyone was given.
    stolen = issue_link_token(
        res.settings,
        delivery_id=str(ann.id),
        recipient=bob.recipient.key(),
        expires_at=ann.link_expires_at,  # type: ignore[arg-type]
    )
    with pytest.raises(NotFound):
        await service.open_link(res.settings, stolen, now=NOW)
    with pytest.raises(NotFound):
        await service.open_link(res.settings, token[:-2] + "AA", now=NOW)
    with pytest.raises(Gone) as expired:
        await service.open_link(res.settings, token, now=NOW + timedelta(days=30))
    assert expired.value.code == "delivery-link-expired"

    assert await repository.revoke_links_for_schedule(job.schedule_id) == 2  # type: ignore[arg-type]
    with pytest.raises(Gone) as revoked:
        await service.open_link(res.settings, token, now=NOW)
    assert revoked.value.code == "delivery-link-revoked"
    cancelled = await repository.get(bob.id)  # type: ignore[arg-type]
    assert cancelled and cancelled.status == DeliveryStatus.CANCELLED  # never sent after revoking


async def test_only_the_owner_or_an_admin_resends_a_failed_delivery(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    [planned] = await _plan(res, job, recipients=[ANN])
    with pytest.raises(Conflict):  # pending: nothing to resend
        await service.resend(res.settings, str(planned.id), user_id="owner-1", is_admin=False)
    await ReportDelivery.get_pymongo_collection().update_one(
        {"_id": planned.id}, {"$set": {"status": "failed", "attempts": 3}}
    )
    with pytest.raises(Forbidden):
        await service.resend(res.settings, str(planned.id), user_id="someone", is_admin=False)
    with pytest.raises(NotFound):
        await service.resend(res.settings, "nope", user_id="owner-1", is_admin=True)
    again = await service.resend(
        res.settings, str(planned.id), user_id="owner-1", is_admin=False, now=NOW
    )
    assert again.status == DeliveryStatus.PENDING and again.attempts == 0
    assert await send_due(res, worker_id="w1", now=NOW) == 1
    [message] = smtp_server.messages()
    assert message["Message-ID"] == f"<{planned.id}@school.example>"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_authentication_comes_from_the_settings(
    delivery_resources: Resources, tmp_path: Path
) -> None:
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        ok = auth.login == b"reports" and auth.password == b"right"
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        FileMailbox(tmp_path / "auth-mail"),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,  # the test server has no certificate
        auth_required=True,
    )
    controller.start()
    try:
        res = delivery_resources
        res.settings.smtp_port = port
        res.settings.smtp_username, res.settings.smtp_password = "reports", "wrong"
        res.settings.smtp_timeout_seconds = 1.0
        job = await completed_job(res)
        [planned] = await _plan(res, job, recipients=[ANN])
        await send_due(res, worker_id="w1", now=NOW)
        refused = await repository.get(planned.id)  # type: ignore[arg-type]
        assert refused and refused.status == DeliveryStatus.PENDING and refused.last_error
        assert not list((tmp_path / "auth-mail").glob("*.eml"))
        res.settings.smtp_password = "right"
        await send_due(res, worker_id="w1", now=NOW + timedelta(minutes=1))
        sent = await repository.get(planned.id)  # type: ignore[arg-type]
        assert sent and sent.status == DeliveryStatus.SENT
        assert len(list((tmp_path / "auth-mail").glob("*.eml"))) == 1
    finally:
        controller.stop()


class SlowFirstReply(FileMailbox):
    """Keeps the first message, then does not answer until released: a sender killed
    meanwhile has sent the message but never learns it was accepted."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.release = threading.Event()
        self.calls = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.calls += 1
        if self.calls == 1:
            await asyncio.to_thread(self.release.wait, 30)
        return answer


async def test_a_sender_killed_during_a_send_is_replaced_and_the_copy_has_the_same_id(
    delivery_resources: Resources, tmp_path: Path
) -> None:
    handler = SlowFirstReply(tmp_path / "crash-mail")
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    child: asyncio.subprocess.Process | None = None
    try:
        res = delivery_resources
        res.settings.smtp_port = port
        res.settings.delivery_lease_seconds = 20  # the shortest the 15 s deadline allows
        job = await completed_job(res)
        [planned] = await _plan(res, job, recipients=[ANN])
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.helpers.delivery_crash_child",
            res.settings.model_dump_json(),
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None
        assert (await asyncio.wait_for(child.stdout.readline(), 30)).strip() == b"ready"
        for _ in range(300):  # the message reached the server: the sender waits for its reply
            if handler.calls:
                break
            await asyncio.sleep(0.05)
        assert handler.calls == 1
        child.send_signal(signal.SIGKILL)
        await child.wait()
        child = None
        handler.release.set()

        held = await repository.get(planned.id)  # type: ignore[arg-type]
        assert held and held.status == DeliveryStatus.SENDING and held.lease_owner == "child"
        assert held.lease_expires_at is not None
        still_held = held.lease_expires_at - timedelta(seconds=1)
        assert await send_due(res, worker_id="w2", now=still_held) == 0
        later = held.lease_expires_at + timedelta(seconds=1)
        assert await send_due(res, worker_id="w2", now=later) == 1
        sent = await repository.get(planned.id)  # type: ignore[arg-type]
        assert sent and sent.status == DeliveryStatus.SENT and sent.attempts == 2
        first, second = (read(p) for p in sorted((tmp_path / "crash-mail").glob("*.eml")))
        assert first["Message-ID"] == second["Message-ID"] == f"<{planned.id}@school.example>"
    finally:
        handler.release.set()
        if child is not None:
            child.kill()
            await child.wait()
        controller.stop()


async def test_the_sender_loop_sends_when_woken_and_stops(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    stop, wake = asyncio.Event(), asyncio.Event()
    loop = asyncio.create_task(
        run_sender(res, worker_id="w1", stop=stop, wake=wake, interval_seconds=60)
    )
    try:
        await asyncio.sleep(0.2)  # idle: nothing due, sleeping for a minute
        job = await completed_job(res)
        await _plan(res, job, recipients=[ANN, BOB])
        await ReportDelivery.get_pymongo_collection().update_many(
            {}, {"$set": {"next_attempt_at": NOW - timedelta(days=365)}}
        )
        wake.set()
        for _ in range(100):
            if len(smtp_server.messages()) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(smtp_server.messages()) == 2
    finally:
        stop.set()
        await asyncio.wait_for(loop, 5)
