"""Calling the worker's tasks (`app.reports.tasks`) directly, with the context a worker process
hands them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.reports.tasks import WorkerContext
from app.runtime.resources import Resources


def worker_context(
    resources: Resources,
    *,
    worker_id: str = "test-worker",
    shutdown: asyncio.Event | None = None,
    running: set[str] | None = None,
    scratch: Path | None = None,
) -> WorkerContext:
    """The context of a worker on `resources` that is not stopping, runs no report job and
    shares the test's work directory; any part can be given instead."""
    return {
        "resources": resources,
        "worker_id": worker_id,
        "shutdown": shutdown if shutdown is not None else asyncio.Event(),
        "running": running if running is not None else set(),
        "scratch": scratch,
    }
