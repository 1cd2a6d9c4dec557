"""The test session's own servers: a MongoDB-compatible SecantusDB and a Redis, each on a free
port with a temporary data directory, started when pytest starts and stopped when it ends. Tests
never use (nor stop, nor flush) a server someone else is running, such as `make run`'s.

`TEST_MONGODB_URL` / `TEST_REDIS_URL` name external servers instead (a CI service container);
the session still isolates itself there by database and queue names."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECANTUS = ROOT / ".tools" / "secantus" / "bin" / "secantusd-py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30, what: str = "a server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on port {port} after {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def secantus_argv(port: int, data_dir: Path) -> list[str]:
    return [
        str(SECANTUS),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(data_dir),
        "--log-level",
        "WARNING",
    ]


def redis_argv(port: int, data_dir: Path) -> list[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed: run scripts/install.sh")
    return [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
    ]


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """Linux: the server gets SIGTERM when the test process dies, even by SIGKILL (a timeout),
    so no server outlives its session."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Server:
    """A process listening on one port that can be stopped and started again on it."""

    def __init__(self, argv: list[str], port: int, name: str = "server") -> None:
        self.argv, self.port, self.name = argv, port, name
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Starts the process without waiting for it to listen."""
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),  # away from any secantusd.toml in the working directory
            preexec_fn=_die_with_parent,
        )

    def wait(self, timeout: float = 60) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.argv}")
        wait_for_port(self.port, timeout, self.name)

    def start(self) -> None:
        self.spawn()
        self.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


class SessionServers:
    """Ports and URLs are fixed when this module is imported (the session's settings name them);
    the processes start with `spawn()` and are awaited by `wait()` before first use."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="reports-test-servers-"))
        self.servers: list[Server] = []
        self.mongodb_url = os.environ.get("TEST_MONGODB_URL") or self._own_mongo()
        self.redis_url = os.environ.get("TEST_REDIS_URL") or self._own_redis()
        self._ready = False

    def _own_mongo(self) -> str:
        port = free_port()
        self.servers.append(
            Server(secantus_argv(port, self.data_dir / "mongo"), port, "SecantusDB")
        )
        return f"mongodb://127.0.0.1:{port}/?directConnection=true"

    def _own_redis(self) -> str:
        port = free_port()
        (self.data_dir / "redis").mkdir()
        self.servers.append(Server(redis_argv(port, self.data_dir / "redis"), port, "Redis"))
        return f"redis://127.0.0.1:{port}/0"

    def spawn(self) -> None:
        for server in self.servers:
            if server.proc is None:
                server.spawn()

    def wait(self) -> None:
        if self._ready:
            return
        self.spawn()
        for server in self.servers:
            server.wait()
        self._ready = True

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self._ready = False
        shutil.rmtree(self.data_dir, ignore_errors=True)


SESSION_SERVERS = SessionServers()
