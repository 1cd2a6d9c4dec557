"""A deadline on every request's own work (`REQUEST_DEADLINE_SECONDS`): past it the answer is a
503 `service-busy` with `Retry-After` and nothing the request stored stays; the per-user quota
lock that cannot be had is the same 503, never a quota breach; a download keeps streaming past
the deadline as long as the client reads.

The slow-database test runs the API as its own process on a private MongoDB-compatible server
that it stops (SIGSTOP) and resumes, so the session's server is never slowed."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator, MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from app.common.time import utcnow
from app.config import Settings
from app.main import create_app
from app.reports.jobs.models import ReportJob
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.api_server import running_api
from tests.helpers.deliveries import completed_job
from tests.helpers.servers import SECANTUS, Server, free_port, secantus_argv
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
BODY = {
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
}


def _busy(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers["content-type"] == "application/problem+json"
        and response.json()["code"] == "service-busy"
        and int(response.headers["retry-after"]) > 0
    )


async def _hold_quota_lock(user: str) -> None:
    """The user's quota lock, held by a live request elsewhere."""
    locks = ReportJob.get_pymongo_collection().database["job_quota_locks"]
    await locks.insert_one(
        {"_id": user, "token": "elsewhere", "expires_at": utcnow() + timedelta(seconds=60)}
    )


async def test_a_quota_lock_that_cannot_be_had_is_503_service_busy_not_a_quota_breach(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    await f.department()
    user = str(ObjectId())
    await _hold_quota_lock(user)
    started = time.monotonic()
    response = await client.post(JOBS, json=BODY, headers=auth("admin", sub=user))
    elapsed = time.monotonic() - started
    assert _busy(response), response.text
    assert response.headers["retry-after"] == "1"
    assert elapsed < 7, elapsed  # the lock's 5 s wait, inside the 10 s deadline
    assert await ReportJob.count() == 0


async def test_past_the_deadline_the_answer_is_503_service_busy(
    auth: TokenFactory, resources: Resources, settings: Settings
) -> None:
    await f.department()
    user = str(ObjectId())
    await _hold_quota_lock(user)  # the request waits for it longer than its deadline
    quick = settings.model_copy(update={"request_deadline_seconds": 1.5})
    application = create_app(quick, resources=resources)
    async with application.router.lifespan_context(application), api_client(application) as c:
        started = time.monotonic()
        response = await c.post(JOBS, json=BODY, headers=auth("admin", sub=user))
        elapsed = time.monotonic() - started
    assert _busy(response), response.text
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"] == response.json()["requestId"]
    assert 1.5 <= elapsed < 2.5, elapsed
    assert await ReportJob.count() == 0


async def test_a_download_keeps_streaming_past_the_deadline(
    auth: TokenFactory, resources: Resources, settings: Settings
) -> None:
    size = 8 * 1024 * 1024
    job = await completed_job(resources, content=b"x" * size)
    job.expires_at = utcnow() + timedelta(days=1)
    await job.insert()
    quick = settings.model_copy(update={"request_deadline_seconds": 0.5})
    application = create_app(quick, resources=resources)
    token = auth("admin")["Authorization"].encode()
    path = f"{JOBS}/{job.id}/download"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"authorization", token)],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    received: list[MutableMapping[str, Any]] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await finished.wait()
        return {"type": "http.disconnect"}

    async def slow_client(message: MutableMapping[str, Any]) -> None:
        received.append(message)
        if message["type"] == "http.response.body":
            await asyncio.sleep(0.2)  # a client reading 1 MiB every 0.2 s
            if not message.get("more_body", False):
                finished.set()

    async with application.router.lifespan_context(application):
        started = time.monotonic()
        await application(scope, receive, slow_client)
        elapsed = time.monotonic() - started
    assert received[0]["status"] == 200
    assert sum(len(m.get("body", b"")) for m in received[1:]) == size
    assert elapsed > 1.0  # well past the deadline, and whole


# ---------------------------------------------------------------------------------------------
# A slow database


@pytest.fixture
def private_database(tmp_path: Path) -> Iterator[Server]:
    if not SECANTUS.exists():
        pytest.skip(f"{SECANTUS} is missing: run scripts/install.sh to get the local database")
    port = free_port()
    server = Server(secantus_argv(port, tmp_path / "db"), port, "SecantusDB (private)")
    server.start()
    try:
        yield server
    finally:
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGCONT)  # never left stopped
        server.stop()


class Stalls:
    """Stops and resumes a server process: stopped `stopped` seconds, running `running`."""

    def __init__(self, pid: int, stopped: float, running: float) -> None:
        self.pid, self.stopped, self.running = pid, stopped, running
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.done.is_set():
                os.kill(self.pid, signal.SIGSTOP)
                self.done.wait(self.stopped)
                os.kill(self.pid, signal.SIGCONT)
                self.done.wait(self.running)
        finally:
            os.kill(self.pid, signal.SIGCONT)

    def __enter__(self) -> Stalls:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(10)


DEADLINE = 2.0
SLACK = 1.0  # the answer's trip to the client on a busy machine


async def _post(
    http: httpx.AsyncClient, auth: TokenFactory, after: float = 0
) -> tuple[float, httpx.Response]:
    await asyncio.sleep(after)
    started = time.monotonic()
    response = await http.post(JOBS, json=BODY, headers=auth("admin", sub=str(ObjectId())))
    return time.monotonic() - started, response


async def test_a_slow_database_gets_202_or_503_within_the_deadline_and_nothing_half_stored(
    private_database: Server, settings: Settings, auth: TokenFactory, tmp_path: Path
) -> None:
    url = f"mongodb://127.0.0.1:{private_database.port}/?directConnection=true"
    db_name = f"deadline_{uuid.uuid4().hex[:8]}"
    assert private_database.proc is not None
    pid = private_database.proc.pid
    answers: list[tuple[float, httpx.Response]] = []
    with running_api(
        settings,
        MONGODB_URL=url,
        MONGODB_DB=db_name,
        LOCAL_STORAGE_DIR=str(tmp_path / "files"),
        REQUEST_DEADLINE_SECONDS=str(DEADLINE),
    ) as api:
        async with httpx.AsyncClient(base_url=api, timeout=30) as http:
            warm = await _post(http, auth)
            assert warm[1].status_code == 202, warm[1].text
            answers.append(warm)
            # The database stops answering at all for longer than the deadline.
            with Stalls(pid, stopped=DEADLINE + 2, running=0.5):
                stopped = await asyncio.gather(*(_post(http, auth) for _ in range(4)))
            assert all(_busy(r) for _, r in stopped), [r.text for _, r in stopped]
            answers += stopped
            # Then it answers slowly (stopped 1 s, running 0.1 s, over and over) to requests
            # arriving at random moments: some finish in time, some not, some after their job
            # was stored.
            rng = random.Random(23)
            with Stalls(pid, stopped=1.0, running=0.1):
                answers += await asyncio.gather(
                    *(_post(http, auth, after=rng.uniform(0, 5)) for _ in range(16))
                )
        times = [round(t, 2) for t, _ in answers]
        codes = [r.status_code for _, r in answers]
        print(f"\nPOST /jobs under a stalled / slow database: codes {codes}, seconds {times}")
        for seconds, response in answers:
            assert response.status_code == 202 or _busy(response), response.text
            assert seconds < DEADLINE + SLACK, (seconds, response.text)
        accepted = {r.json()["id"] for _, r in answers if r.status_code == 202}

        # Once the database is back: exactly the accepted jobs and no quota lock, once the undo
        # has run (it runs again a few seconds later, for writes the stalled server applied
        # late).
        database: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        try:
            jobs = database[db_name]["report_jobs"]

            async def stored() -> set[str]:
                return {str(doc["_id"]) async for doc in jobs.find({}, {"_id": 1})}

            deadline = time.monotonic() + 30
            while (found := await stored()) != accepted and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            await asyncio.sleep(6)
            found = await stored()
            locks = await database[db_name]["job_quota_locks"].count_documents({})
        finally:
            await database.close()
    assert found == accepted, (sorted(found - accepted), sorted(accepted - found))
    assert locks == 0  # no user's next request waits for a lock a cut request left
