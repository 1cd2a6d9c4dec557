"""Shared helpers of the benchmarks: settings of the isolated bench environment, the real API
and worker subprocesses, memory / CPU sampling, job driving over HTTP and statistics."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
BENCH_DIR = ROOT / ".data" / "bench"
LOG_DIR = BENCH_DIR / "logs"

# Everything the bench runs sees these (unless the caller's environment overrides them).
BENCH_ENV = {
    "MONGODB_DB": "bench_reports",
    "QUEUE_NAME": "bench:reports:queue",
    "SCHEDULER_QUEUE_NAME": "bench:reports:scheduler",
    "LOCAL_STORAGE_DIR": str(BENCH_DIR / "files"),
    "STORAGE_BACKEND": "local",
    "APP_ENV": "local",
    "LOG_LEVEL": "WARNING",
    "LOG_FORMAT": "json",
}
TERMINAL = {"completed", "failed", "cancelled", "expired"}


def bench_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in BENCH_ENV.items():
        env.setdefault(key, value)
    env.update(extra)
    return env


def apply_bench_env() -> None:
    """Makes this process use the bench settings too (call before importing app settings)."""
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# -- subprocesses ----------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 25.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def start(name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child
    popen = subprocess.Popen(
        args, cwd=ROOT, env=env or bench_env(), stdout=log, stderr=subprocess.STDOUT
    )
    return Proc(name, popen, log_path)


def wait_http(url: str, proc: Proc, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited (see {proc.log_path})")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url} within {seconds} s")


def start_api(port: int) -> Proc:
    proc = start(f"api-{port}", [PY, "-m", "app", "--port", str(port)])
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def start_worker(index: int = 0, **env: str) -> Proc:
    return start(f"worker-{index}", [PY, "-m", "worker"], bench_env(**env))


@contextlib.contextmanager
def running(procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            proc.stop()


# -- sampling --------------------------------------------------------------------------------


def cpu_seconds(pid: int, children: bool = False) -> float:
    proc = psutil.Process(pid)
    times = proc.cpu_times()
    total = times.user + times.system
    if children:
        total += times.children_user + times.children_system
    return total


class MemorySampler:
    """Peak RSS of a process alone and with its (recursive) children, sampled every 20 ms."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_self = 0
        self.peak_tree = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                own = self.process.memory_info().rss
                tree = own
                for child in self.process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        tree += child.memory_info().rss
            except psutil.Error:
                return
            self.peak_self = max(self.peak_self, own)
            self.peak_tree = max(self.peak_tree, tree)
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_self_mb(self) -> float:
        return self.peak_self / 2**20

    @property
    def peak_tree_mb(self) -> float:
        return self.peak_tree / 2**20


# -- HTTP ------------------------------------------------------------------------------------


def token(sub: str, role: str = "admin", name: str | None = None) -> str:
    from app.config import get_settings
    from app.security import mint_token

    return mint_token(
        get_settings(),
        sub=sub,
        name=name or f"Bench {sub[-4:]}",
        email=f"bench-{sub[-6:]}@bench.example",
        roles=[role],
        ttl_seconds=6 * 3600,
    )


def user_sub(n: int) -> str:
    return f"be0c{n:020x}"


@dataclass
class JobRun:
    job_id: str
    status: str
    seconds: float
    body: dict[str, Any] = field(default_factory=dict)


def create_job(client: httpx.Client, report: dict[str, Any]) -> str:
    resp = client.post("/api/v1/reports/jobs", json=report)
    if resp.status_code != 202:
        raise RuntimeError(f"job create: HTTP {resp.status_code}: {resp.text[:300]}")
    return str(resp.json()["id"])


def wait_job(
    client: httpx.Client, job_id: str, started: float, poll: float = 0.05, timeout: float = 3600
) -> JobRun:
    unavailable, since = 0, 0.0
    while True:
        resp = client.get(f"/api/v1/reports/jobs/{job_id}")
        if resp.status_code == 503 and (not unavailable or time.perf_counter() - since < 900):
            # The database server did not answer within MONGODB_TIMEOUT_MS (a single-threaded
            # server busy with a read of millions of documents): the API says so; ask again,
            # for up to 15 minutes on end.
            since = since if unavailable else time.perf_counter()
            unavailable += 1
            log(f"job {job_id}: status poll answered 503 ({unavailable}), retrying")
            time.sleep(max(poll, 1.0))
            continue
        resp.raise_for_status()
        unavailable = 0
        body = resp.json()
        if body["status"] in TERMINAL:
            return JobRun(job_id, body["status"], time.perf_counter() - started, body)
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"job {job_id} not finished after {timeout} s")
        time.sleep(poll)


def run_job(client: httpx.Client, report: dict[str, Any], poll: float = 0.05) -> JobRun:
    started = time.perf_counter()
    job_id = create_job(client, report)
    run = wait_job(client, job_id, started, poll)
    if run.status != "completed":
        raise RuntimeError(f"job {job_id} ended {run.status}: {json.dumps(run.body)[:500]}")
    return run


def api_client(port: int, sub: str, role: str = "admin") -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token(sub, role)}"},
        timeout=120,
    )


def run_baseline(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs a baseline script in its own process; its last stdout line is a JSON result."""
    out = subprocess.run(
        [PY, "-m", *args], cwd=ROOT, env=env or bench_env(), capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"baseline {args} failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def log(msg: str) -> None:
    print(f"   {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)
