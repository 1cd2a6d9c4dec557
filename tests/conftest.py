"""Test infrastructure: real MongoDB-compatible, Redis and S3 (moto) servers of the session's
own, on free ports with temporary data (`tests.helpers.servers`), so a running `make run` is
never used, stopped or flushed; each test starts from empty collections (lookups re-seeded) in a
database of its own session, so parallel runs never meet. Settings are built as objects (`tests.helpers.settings`):
nothing here reads or changes environment variables beyond where the servers are."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.documents import DOCUMENTS
from app.lookup_sources import provide_lookup_sources
from app.lookups.seed import seed_lookups
from app.main import create_app
from app.reports.reading.slicing import DENSITIES
from app.runtime.resources import Resources
from app.storage import build_storage
from tests.helpers.api import api_client
from tests.helpers.processes import free_port
from tests.helpers.servers import SESSION_SERVERS
from tests.helpers.settings import SESSION_RUN, SESSION_SETTINGS
from tests.helpers.tokens import TokenFactory, token_factory
from worker.main import run_worker as _run_worker

# The delivery servers (SMTP mailbox, webhook receiver) and resources with delivery settings.
pytest_plugins = ["tests.helpers.delivery_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    provide_lookup_sources()  # as the entry points do
    SESSION_SERVERS.spawn()  # they start while the tests are collected


def pytest_unconfigure(config: pytest.Config) -> None:
    SESSION_SERVERS.stop()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return SESSION_SETTINGS


@pytest.fixture(scope="session")
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    SESSION_SERVERS.wait()
    res = await Resources.open(settings, documents=DOCUMENTS)
    await seed_lookups()
    yield res
    await res.database.client.drop_database(settings.mongodb_db)
    await res.queue.pool.delete(settings.queue_name, settings.scheduler_queue_name)
    await res.close()


@pytest.fixture(autouse=True)
async def _clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Empties every collection (indexes kept) and the test queues before each test that
    touches the servers."""
    DENSITIES.clear()  # what earlier tests' reads taught the slicing
    if "resources" not in request.fixturenames:
        yield
        return
    res: Resources = request.getfixturevalue("resources")
    db = res.database.db
    for name in await db.list_collection_names():
        if name != "lookup_values" and not name.startswith("system."):
            await db[name].delete_many({})
    keys = await res.queue.pool.keys(f"*{SESSION_RUN}*")  # this session's queues and messages
    if keys:
        await res.queue.pool.delete(*keys)
    await seed_lookups()  # the table itself; each process's copy refreshes on its own
    yield


@pytest.fixture
async def app(resources: Resources, settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, resources=resources)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(app) as c:
        yield c


@pytest.fixture
def auth(settings: Settings) -> TokenFactory:
    """`auth(role, sub=..., departments=[...])` -> Authorization headers for that caller."""
    return token_factory(settings)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-speaking server (moto standalone) for the session."""
    external = os.environ.get("TEST_S3_ENDPOINT_URL")
    if external:
        yield external
        return
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("moto_server did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_settings(settings: Settings, moto_endpoint: str) -> Settings:
    return Settings.model_validate(
        {
            **settings.model_dump(),
            "storage_backend": "s3",
            "s3_endpoint_url": moto_endpoint,
            "s3_bucket": f"test-{uuid.uuid4().hex[:12]}",
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "s3_part_size_mb": 5,
            "s3_create_bucket": True,
        }
    )


@pytest.fixture
async def s3_resources(s3_settings: Settings, resources: Resources) -> AsyncIterator[Resources]:
    """The session's database and queue with S3 (moto) storage. (A second `Resources.open`
    would re-bind the documents to another client.)"""
    storage = await build_storage(s3_settings)
    yield Resources(
        settings=s3_settings, database=resources.database, queue=resources.queue, storage=storage
    )
    await storage.close()


@pytest.fixture
def run_worker(settings: Settings, resources: Resources) -> Callable[..., Any]:
    """Runs a real worker in burst mode until the queue is empty, sharing the test session's
    database and queue connections (Beanie binds documents to one client per process).
    Setting overrides apply to the worker; storage overrides give it its own storage."""

    async def run(timeout: float = 60, **overrides: Any) -> None:
        cfg = (
            Settings.model_validate({**settings.model_dump(), **overrides})
            if overrides
            else settings
        )
        storage = resources.storage
        if any(k.startswith(("storage_", "s3_", "local_storage")) for k in overrides):
            storage = await build_storage(cfg)
        shared = Resources(
            settings=cfg, database=resources.database, queue=resources.queue, storage=storage
        )
        try:
            await asyncio.wait_for(
                _run_worker(cfg, burst=True, poll_delay=0.05, resources=shared), timeout
            )
        finally:
            if storage is not resources.storage:
                await storage.close()

    return run


@pytest.fixture
def doomed_redis() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port, proc
    proc.kill()
    proc.wait()
