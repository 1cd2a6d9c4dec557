"""Fixtures of the delivery tests (registered by tests/conftest.py): real servers on free ports of 127.0.0.1 and resources with delivery settings."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from beanie import init_beanie

from app.main import create_app
from app.reports.deliveries.models import DELIVERY_DOCUMENTS
from app.runtime.resources import Resources
from scripts.mail_server import FileMailbox
from tests.helpers.api import api_client
from tests.helpers.deliveries import Mailbox, Received, Receiver
from tests.helpers.processes import free_port


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Mailbox]:
    port = free_port()
    controller = Controller(FileMailbox(tmp_path / "mail"), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Mailbox(tmp_path / "mail", port)
    finally:
        controller.stop()


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
            # The outbox tests mail these domains' addresses; the sender checks the domain
            # rule again before each message.
            "allowed_recipient_domains": ",".join(
                [resources.settings.allowed_recipient_domains, "school.example,partner.example"]
            ),
            "webhook_timeout_seconds": 3.0,
            "delivery_backoff_seconds": 10.0,
            "delivery_backoff_max_seconds": 60.0,
            "delivery_max_attempts": 3,
            "public_base_url": "https://reports.example",
        }
    )
    yield dataclasses.replace(resources, settings=settings)


@pytest.fixture
async def delivery_client(delivery_resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the delivery settings (loopback webhooks allowed, the test SMTP server)."""
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as c:
        yield c
