"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.common.schemas import ApiModel
from app.common.time import utcnow
from app.deps import ResourcesDep
from app.runtime.models import WorkerProcess

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 3.0


class Health(ApiModel):
    status: Literal["ok"]


class LiveWorker(ApiModel):
    worker_id: str
    host: str
    pid: int
    queues: list[str]
    last_seen_at: str


class Readiness(ApiModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]
    workers: list[LiveWorker]


@router.get("/healthz", response_model=Health, operation_id="health_live", summary="Process alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    operation_id="health_ready",
    summary="MongoDB, Redis and storage reachable",
    responses={503: {"model": Readiness, "description": "A dependency is down (named in checks)"}},
)
async def readyz(resources: ResourcesDep) -> Any:
    async def check(name: str, probe: Any) -> tuple[str, str]:
        try:
            await asyncio.wait_for(probe(), timeout=CHECK_TIMEOUT)
        except Exception as exc:
            return name, f"down: {type(exc).__name__}"
        return name, "ok"

    results = await asyncio.gather(
        check("mongodb", resources.database.ping),
        check("redis", resources.queue.ping),
        check(f"storage:{resources.storage.name}", resources.storage.ping),
    )
    checks = dict(results)
    workers: list[LiveWorker] = []
    if checks["mongodb"] == "ok":
        try:
            cutoff = utcnow() - timedelta(seconds=resources.settings.worker_heartbeat_seconds * 4)
            found = await asyncio.wait_for(
                WorkerProcess.find(WorkerProcess.last_seen_at >= cutoff).to_list(), CHECK_TIMEOUT
            )
            workers = [
                LiveWorker(
                    worker_id=w.worker_id,
                    host=w.host,
                    pid=w.pid,
                    queues=w.queues,
                    last_seen_at=w.last_seen_at.isoformat(),
                )
                for w in found
            ]
        except Exception:  # informational only
            workers = []
    ok = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ok else "unavailable", checks=checks, workers=workers)
    return JSONResponse(body.model_dump(by_alias=True), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    operation_id="health_metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
