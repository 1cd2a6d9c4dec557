"""Real processes for tests: workers on the session's settings, throw-away Redis servers."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

from app.config import Settings
from tests.helpers.servers import SESSION_SERVERS, free_port
from tests.helpers.settings import SESSION_SETTINGS, settings_env

__all__ = ["free_port", "kill_group", "start_redis", "start_worker"]

ROOT = Path(__file__).resolve().parents[2]
_WORKERS = itertools.count(1)


def start_worker(settings: Settings = SESSION_SETTINGS, /, **env: str) -> subprocess.Popen[bytes]:
    """`python -m worker` on `settings` with short leases and heartbeats (so a killed worker's
    job is taken over quickly); `env` overrides any variable."""
    SESSION_SERVERS.wait()
    # TEST_WORKER_LOGS=DIR keeps each worker's log (worker-<n>.log) for a look afterwards.
    log_dir = os.environ.get("TEST_WORKER_LOGS")
    output: int | IO[bytes] = subprocess.DEVNULL
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        output = open(Path(log_dir) / f"worker-{next(_WORKERS)}.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env=settings_env(
            settings,
            **{
                "JOB_LEASE_SECONDS": "5",
                "JOB_HEARTBEAT_SECONDS": "0.5",
                # 3 x 1 + 0.5 + 1 <= 5: a killed worker's job is never taken for a stall.
                "WORKER_HEARTBEAT_SECONDS": "1",
                "JOB_RETRY_BACKOFF_SECONDS": "0",
                "RENDER_PROCESSES": "1",
                "PDF_CHUNK_ROWS": "100",
                **env,
            },
        ),
        stdout=output,
        stderr=output,
        start_new_session=True,
    )
    if not isinstance(output, int):
        output.close()  # the worker has its own copy
    return worker


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signals the process and its children (render processes); gone already is fine."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def start_redis(port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    assert exe, "redis-server is not installed"
    return subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )


def start_api(
    port: int, settings: Settings = SESSION_SETTINGS, /, **env: str
) -> subprocess.Popen[bytes]:
    """`python -m app --port <port>` on `settings`; `env` overrides any variable. Its log goes
    to a pipe (read it when it fails to start)."""
    SESSION_SERVERS.wait()
    return subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port)],
        cwd=ROOT,
        env=settings_env(settings, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
