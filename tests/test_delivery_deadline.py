"""Slow receivers against the delivery deadline: a webhook that answers one byte every half
second and an SMTP server that takes its time over every command. Each attempt ends within
`DELIVERY_ATTEMPT_DEADLINE_SECONDS`, a delivery is never sent twice at once, and an e-mail
queued behind a stuck webhook leaves at once (each channel has its lane). Real servers on
127.0.0.1 and a real worker process."""

from __future__ import annotations

import asyncio
import itertools
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import ValidationError

from app.common.time import utcnow
from app.config import Settings
from app.reports.deliveries import repository
from app.reports.deliveries.models import DeliveryConfig, DeliveryStatus, Recipient
from app.reports.deliveries.planning import plan_deliveries, plan_notice
from app.reports.deliveries.sender import send_due
from app.reports.deliveries.signing import generate_secret
from app.runtime.resources import Resources
from scripts.mail_server import FileMailbox
from tests.helpers.deliveries import Mailbox, completed_job
from tests.helpers.polling import wait_until
from tests.helpers.processes import ROOT, free_port, kill_group, start_worker
from tests.helpers.settings import make_settings, settings_env

DEADLINE = 4.0  # seconds: DELIVERY_ATTEMPT_DEADLINE_SECONDS of the worker under test
DRIP_SECONDS = 0.5


@dataclass
class Call:
    started: float  # time.monotonic() when the request had arrived
    ended: float | None = None  # when the sender hung up


@dataclass
class DripReceiver:
    """Reads a whole POST, then answers one byte every DRIP_SECONDS until the client hangs up:
    every read of the answer succeeds long before any per-read timeout."""

    port: int
    calls: list[Call] = field(default_factory=list)


@pytest.fixture
def drip_receiver() -> Iterator[DripReceiver]:
    server = socket.create_server(("127.0.0.1", 0))
    receiver = DripReceiver(port=server.getsockname()[1])
    closing = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += conn.recv(65536)
            call = Call(started=time.monotonic())
            receiver.calls.append(call)
            answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 100000
            for byte in answer:
                readable, _, _ = select.select([conn], [], [], DRIP_SECONDS)
                if closing.is_set() or (readable and not conn.recv(1)):
                    break  # the sender hung up
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break
            call.ended = time.monotonic()

    def accept() -> None:
        while not closing.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        closing.set()
        server.close()


async def test_a_dripping_webhook_is_cut_at_the_deadline_and_the_email_behind_it_leaves_at_once(
    delivery_resources: Resources, smtp_server: Mailbox, drip_receiver: DripReceiver
) -> None:
    res = delivery_resources
    job = await completed_job(res)
    endpoint = await repository.create_endpoint(
        owner_user_id="owner-1",
        url=f"http://127.0.0.1:{drip_receiver.port}/hook",
        secret=generate_secret(),
    )
    assert endpoint.id is not None
    now = utcnow()
    [hook] = plan_deliveries(
        job,
        DeliveryConfig(webhook_endpoint_ids=[endpoint.id]),
        [endpoint],
        res.settings,
        report_name="Monthly progress",
        now=now - timedelta(seconds=2),  # first in line
    )
    mail = plan_notice(
        res.settings,
        recipient=Recipient(user_id="u-ann", address="ann@school.example"),
        subject="Queued behind the webhook",
        text="This message was due after the webhook call.",
        report_name="Monthly progress",
        report_type="learner-progress",
        now=now - timedelta(seconds=1),
    )
    await repository.insert_many([hook, mail])

    worker = start_worker(
        res.settings,
        DELIVERY_ATTEMPT_DEADLINE_SECONDS=str(DEADLINE),
        DELIVERY_LEASE_SECONDS=str(int(DEADLINE) + 5),  # the shortest the settings allow
        DELIVERY_BACKOFF_SECONDS="1",
        DELIVERY_MAX_ATTEMPTS="3",
    )
    try:

        async def first_call() -> Call | None:
            return drip_receiver.calls[0] if drip_receiver.calls else None

        first = await wait_until(first_call, 60, "the webhook call", interval=0.05)
        assert first is not None

        async def mailed() -> bool:
            return len(smtp_server.messages()) == 1

        await wait_until(mailed, 30, "the e-mail", interval=0.05)
        email_after = time.monotonic() - first.started

        async def given_up() -> bool:
            stored = await repository.get(hook.id)  # type: ignore[arg-type]
            return stored is not None and stored.status == DeliveryStatus.FAILED

        await wait_until(given_up, 60, "the webhook's three attempts", interval=0.2)
    finally:
        kill_group(worker, signal.SIGTERM)
        worker.wait(30)

    stored = await repository.get(hook.id)  # type: ignore[arg-type]
    assert stored is not None and stored.attempts == 3
    assert stored.last_error == (
        f"gave up after 3 attempts; last error: the webhook did not finish within the "
        f"{DEADLINE:g} s deadline"
    )
    calls = drip_receiver.calls
    durations = [round(c.ended - c.started, 2) for c in calls if c.ended is not None]
    print(f"\nwebhook attempts lasted {durations} s; the e-mail left {email_after:.2f} s after")
    # One POST per attempt, each cut at the deadline (dripping bytes never trip a per-read
    # timeout), and never two at once: the lease outlives every attempt.
    assert len(calls) == len(durations) == 3
    assert all(DEADLINE - 0.5 <= d <= DEADLINE + 1.5 for d in durations), durations
    for earlier, later in itertools.pairwise(calls):
        assert earlier.ended is not None and earlier.ended <= later.started
    # The e-mail was due after the webhook but has a lane of its own.
    assert email_after < DEADLINE / 2, email_after
    [message] = smtp_server.messages()
    assert message["Subject"] == "Queued behind the webhook"


class SlowCommands(FileMailbox):
    """Answers every envelope command after a pause shorter than the client's per-command
    timeout: a message takes longer than the deadline without any single read timing out."""

    PAUSE = 1.5

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.PAUSE)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.PAUSE)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.PAUSE)
        return await super().handle_DATA(server, session, envelope)


async def test_a_slow_smtp_server_is_cut_at_the_deadline_and_retried(
    delivery_resources: Resources, tmp_path: Path
) -> None:
    port = free_port()
    controller = Controller(SlowCommands(tmp_path / "slow"), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        res = delivery_resources
        res.settings.smtp_port = port
        res.settings.smtp_timeout_seconds = 5.0  # per command: never reached
        res.settings.delivery_attempt_deadline_seconds = 2.0
        mail = plan_notice(
            res.settings,
            recipient=Recipient(address="ann@school.example"),
            subject="Slow",
            text="Slow server.",
            report_name="R",
            report_type="learner-progress",
        )
        await repository.insert_many([mail])
        started = time.monotonic()
        assert await send_due(res, worker_id="w1") == 1
        took = time.monotonic() - started
        stored = await repository.get(mail.id)  # type: ignore[arg-type]
        assert stored is not None and stored.status == DeliveryStatus.PENDING
        assert stored.last_error == "the SMTP server did not finish within the 2 s deadline"
        assert 1.8 <= took <= 3.5, took
        assert not list((tmp_path / "slow").glob("*.eml"))

        res.settings.delivery_attempt_deadline_seconds = 10.0  # the same server, given time
        assert await send_due(res, worker_id="w1", now=stored.next_attempt_at) == 1
        sent = await repository.get(mail.id)  # type: ignore[arg-type]
        assert sent is not None and sent.status == DeliveryStatus.SENT and sent.attempts == 2
    finally:
        controller.stop()


def test_a_delivery_lease_shorter_than_the_deadline_is_refused(settings: Settings) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(delivery_lease_seconds=30, delivery_attempt_deadline_seconds=28)
    assert "DELIVERY_LEASE_SECONDS (30) must be at least DELIVERY_ATTEMPT_DEADLINE_SECONDS" in (
        str(refused.value)
    )
    assert make_settings(delivery_lease_seconds=30, delivery_attempt_deadline_seconds=25)
    proc = subprocess.run(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env=settings_env(
            settings, DELIVERY_LEASE_SECONDS="20", DELIVERY_ATTEMPT_DEADLINE_SECONDS="60"
        ),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert b"DELIVERY_LEASE_SECONDS (20) must be at least" in proc.stderr
    assert b"DELIVERY_ATTEMPT_DEADLINE_SECONDS (60) + 5 s" in proc.stderr
