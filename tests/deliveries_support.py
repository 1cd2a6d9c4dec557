"""Real servers for the delivery tests, on free ports of 127.0.0.1: an SMTP server (aiosmtpd
with the project's FileMailbox, a temporary directory per test) and an HTTP receiver for
webhooks (records each request, answers with the statuses it is told)."""

from __future__ import annotations

import dataclasses
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from beanie import PydanticObjectId, init_beanie

from app.reports.deliveries.models import DELIVERY_DOCUMENTS
from app.reports.jobs.models import JobResult, JobStatus, ReportJob, Requester
from app.runtime.resources import Resources
from scripts.mail_server import FileMailbox
from scripts.mailbox import list_mail, read


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port

    def messages(self) -> list[EmailMessage]:
        return [read(mail.path) for mail in list_mail(self.directory)]


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Mailbox]:
    port = free_port()
    controller = Controller(FileMailbox(tmp_path / "mail"), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Mailbox(tmp_path / "mail", port)
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers in order, then 200
    extra_headers: dict[str, str] = field(default_factory=dict)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    receiver = Receiver(port=0)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            answer = b"ok " + b"x" * 500  # longer than the excerpt we keep
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def delivery_resources(
    resources: Resources, smtp_server: Mailbox
) -> AsyncIterator[Resources]:
    """The session's resources with delivery settings for the local servers (loopback allowed
    for webhooks, short back-off) and the delivery documents bound to the test database."""
    await init_beanie(database=resources.database.db, document_models=DELIVERY_DOCUMENTS)
    settings = resources.settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server.port,
            "smtp_timeout_seconds": 5.0,
            "mail_from": "Reports <reports@school.example>",
            "webhook_allowed_networks": "127.0.0.1/32",
            "webhook_timeout_seconds": 3.0,
            "delivery_backoff_seconds": 10.0,
            "delivery_backoff_max_seconds": 60.0,
            "delivery_max_attempts": 3,
            "public_base_url": "https://reports.example",
        }
    )
    yield dataclasses.replace(resources, settings=settings)


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def completed_job(
    resources: Resources, *, content: bytes = b"a,b\n1,2\n", rows: int = 1
) -> ReportJob:
    """A completed job (not inserted) whose file is really stored."""
    job_id = PydanticObjectId()
    key = f"reports/2026-11-30/{job_id}/a1/learner-progress.csv"

    async def chunks() -> AsyncIterator[bytes]:
        yield content

    stored = await resources.storage.write_stream(key, chunks(), "text/csv")
    return ReportJob(
        id=job_id,
        report_type="learner-progress",
        format="csv",
        requested_by=Requester(user_id="owner-1", name="Owner", email="owner@school.example"),
        schedule_id=PydanticObjectId(),
        status=JobStatus.COMPLETED,
        resolved_parameters={
            "timezone": "Europe/Berlin",
            "dateRange": {"start": "2026-10-31T23:00:00Z", "end": "2026-11-30T23:00:00Z"},
        },
        result=JobResult(
            file_name="learner-progress.csv",
            content_type="text/csv; charset=utf-8",
            size_bytes=stored.size_bytes,
            row_count=rows,
            checksum_sha256=stored.checksum_sha256,
            storage_key=key,
        ),
        expires_at=NOW + timedelta(days=3),
    )


class ConnectionLog:
    """Every socket connect of this process while `active` (a Python audit hook: hooks cannot
    be removed, so it is installed once and switched on per test)."""

    def __init__(self) -> None:
        self.active = False
        self.addresses: list[Any] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and event == "socket.connect":
            self.addresses.append(args[1])


CONNECTIONS = ConnectionLog()
