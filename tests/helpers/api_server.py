"""The API as a real server (`python -m app` on a free port), for checks from outside the
process: browsers and generated clients."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from app.config import Settings
from tests.helpers.processes import free_port
from tests.helpers.settings import settings_env

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_api(settings: Settings, timeout: float = 60, **env: str) -> Iterator[str]:
    """Runs the API on `settings` (plus `env` variables) until the block ends; yields its base
    URL once it answers."""
    port = free_port()
    # A file, not a pipe: a chatty server never blocks on it.
    with tempfile.TemporaryFile() as log:
        yield from _serve(port, log, settings, timeout, env)


def _serve(
    port: int, log: IO[bytes], settings: Settings, timeout: float, env: dict[str, str]
) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port)],
        cwd=ROOT,
        env=settings_env(settings, LOG_LEVEL="WARNING", **env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                output = log.read().decode(errors="replace")
                raise RuntimeError(f"the API exited with {proc.returncode}: {output[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not answer on {url} within {timeout} s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
