from __future__ import annotations

import subprocess

import httpx

from app.config import Settings
from app.main import create_app
from app.queue import Queue
from app.runtime.models import WorkerProcess
from app.runtime.resources import Resources


async def test_healthz_answers_without_auth(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_names_each_dependency_and_live_workers(client: httpx.AsyncClient) -> None:
    await WorkerProcess(worker_id="w-1", host="box", pid=42, queues=["q"]).insert()
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"] == {"mongodb": "ok", "redis": "ok", "storage:local": "ok"}
    assert [w["workerId"] for w in body["workers"]] == ["w-1"]


async def test_request_id_is_echoed_when_given(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "http_requests_total" in response.text


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "route-not-found"


async def test_oversized_body_is_413(client: httpx.AsyncClient, settings: object) -> None:
    big = b"x" * (2 * 1024 * 1024)
    response = await client.post(
        "/api/v1/learning-events", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload-too-large"


async def test_readyz_is_503_naming_redis_while_it_is_down_and_200_after(
    resources: Resources, settings: Settings, doomed_redis: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port, proc = doomed_redis
    queue = await Queue.connect(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    )
    wired = Resources(
        settings=settings, database=resources.database, queue=queue, storage=resources.storage
    )
    application = create_app(settings, resources=wired)
    transport = httpx.ASGITransport(app=application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        assert (await c.get("/readyz")).status_code == 200
        proc.kill()
        proc.wait()
        down = await c.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["redis"].startswith("down")
        assert down.json()["checks"]["mongodb"] == "ok"
        assert (await c.get("/healthz")).status_code == 200  # alive, just not ready
    await queue.close()
