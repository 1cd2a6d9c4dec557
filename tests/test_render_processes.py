"""PDF render processes end with their worker: a worker SIGKILLed mid-PDF leaves no render
process (nor the multiprocessing resource tracker) behind, and the sweep at worker start ends a
recorded render process that outlived its worker, and nothing else."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from bson import ObjectId

from app.common import children
from app.reports.rendering import render_pdf
from app.runtime import scratch
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.jobs import insert_enrollments
from tests.helpers.polling import wait_until
from tests.helpers.processes import ROOT, kill_group, start_worker
from tests.helpers.tokens import TokenFactory
from tests.test_rendering import PDF_COLUMNS, make_context, pdf_rows

JOBS = "/api/v1/reports/jobs"
PDF = {
    "reportType": "learner-progress",
    "format": "pdf",
    "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
}
KILLS = 5


def _group(pgid: int) -> dict[int, str]:
    """The running processes of a process group (pid -> command line); zombies have ended."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found[int(entry.name)] = command
    return found


async def test_a_worker_killed_mid_pdf_leaves_no_render_process(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, tmp_path: Path
) -> None:
    dept = await f.department("Operations", code="OPS")
    course = await f.course("OPS-1", title="Operations handbook " * 3)
    await insert_enrollments(course, dept, 400)
    rng = random.Random(7)
    seen, gone_after = [], []
    for _ in range(KILLS):
        created = await client.post(JOBS, json=PDF, headers=auth("admin", sub=str(ObjectId())))
        assert created.status_code == 202, created.text
        worker = start_worker(TMPDIR=str(tmp_path), RENDER_PROCESSES="2", PDF_CHUNK_ROWS="50")
        try:

            async def rendering(pgid: int = worker.pid) -> dict[int, str]:
                group = _group(pgid)
                return group if any("spawn_main" in c for c in group.values()) else {}

            await wait_until(rendering, 90, "render processes", interval=0.05)
            await asyncio.sleep(rng.uniform(0.0, 1.0))  # somewhere in the middle of a chunk
            group = _group(worker.pid)
            seen.append(len(group) - 1)  # the worker's children, the resource tracker included
            os.kill(worker.pid, signal.SIGKILL)  # the worker only, as the OOM killer does
            worker.wait(10)
            killed_at = time.monotonic()

            async def all_gone(pgid: int = worker.pid) -> bool:
                return not _group(pgid)

            await wait_until(all_gone, 10, "the killed worker's render processes", interval=0.05)
            gone_after.append(time.monotonic() - killed_at)
        finally:
            kill_group(worker, signal.SIGKILL)
            worker.wait(10)
    print(
        f"\n{KILLS} workers SIGKILLed mid-PDF: children per worker {seen}, all gone after "
        f"{[round(s, 2) for s in gone_after]} s"
    )
    assert all(count >= 2 for count in seen), seen  # render processes were running each time


def _sleeper(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *args])


ORPHAN = """
import os, pathlib, subprocess, sys, time
work = pathlib.Path(sys.argv[1]) / f"{sys.argv[2]}{os.getpid()}-x"
work.mkdir()
code = (
    "import pathlib, sys, time; from app.common.children import record; "
    "record(pathlib.Path(sys.argv[1]), int(sys.argv[2])); time.sleep(120)"
)
child = subprocess.Popen(
    [sys.executable, "-c", code, str(work), str(os.getpid())],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
while not any(work.iterdir()):
    time.sleep(0.02)
print(child.pid, work.name, flush=True)
"""


def test_the_sweep_ends_recorded_orphans_of_a_dead_worker_and_nothing_else(
    tmp_path: Path,
) -> None:
    # A stand-in for a killed worker: it starts a process that records itself, then dies.
    prefix = f"{scratch.PREFIX}{scratch._host()}-"
    dying = subprocess.run(
        [sys.executable, "-c", ORPHAN, str(tmp_path), prefix],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    orphan_text, directory = dying.stdout.decode().split()
    orphan = int(orphan_text)
    work = tmp_path / directory
    dead_parent = int(directory[len(prefix) :].split("-")[0])
    # Two live processes recorded there that must be left alone: one whose start time differs
    # from the record (a later process given a recorded pid) and one still the child of the
    # recorded parent.
    reused, adopted = _sleeper(), _sleeper()
    try:
        reused_stat = children.process_stat(reused.pid)
        adopted_stat = children.process_stat(adopted.pid)
        assert reused_stat and adopted_stat
        (work / f"{children.RECORD_PREFIX}{reused.pid}").write_text(
            f"{reused.pid} {reused_stat.start_time + 1} {dead_parent}\n"
        )
        (work / f"{children.RECORD_PREFIX}{adopted.pid}").write_text(
            f"{adopted.pid} {adopted_stat.start_time} {os.getpid()}\n"
        )
        stat = children.process_stat(orphan)
        assert stat is not None and stat.running  # it outlived its parent

        assert scratch.sweep(tmp_path) == 1
        assert not work.exists()
        deadline = time.monotonic() + 5
        while (stat := children.process_stat(orphan)) and stat.running:
            assert time.monotonic() < deadline, "the orphan is still running"
            time.sleep(0.05)
        assert reused.poll() is None and adopted.poll() is None
    finally:
        for proc in (reused, adopted):
            proc.kill()
            proc.wait(10)
        if (stat := children.process_stat(orphan)) and stat.running:
            os.kill(orphan, signal.SIGKILL)


async def _render_process_ids(tmp_path: Path, rows: int) -> set[int]:
    """Every render process seen while a PDF of ``rows`` rows (at most 50 a chunk, two
    processes allowed) is laid out."""
    me, seen = psutil.Process(), set[int]()

    def look() -> None:
        for child in me.children():  # theirs (WeasyPrint's library lookups) are not counted
            try:
                if "multiprocessing-fork" in " ".join(child.cmdline()):
                    seen.add(child.pid)
            except psutil.Error:
                pass

    task = asyncio.create_task(
        render_pdf(
            tmp_path / f"r{rows}.pdf",
            PDF_COLUMNS,
            pdf_rows(rows),
            make_context(format="pdf"),
            chunk_rows=50,
            processes=2,
        )
    )
    while not task.done():
        look()
        await asyncio.sleep(0.02)
    pages = await task
    assert pages >= 1 and (tmp_path / f"r{rows}.pdf").stat().st_size > 0
    return seen


async def test_a_one_chunk_pdf_starts_one_render_process_a_longer_one_all(
    tmp_path: Path,
) -> None:
    """A PDF whose rows all fit page one's chunk (most of them) loads WeasyPrint once; one of
    several chunks starts every render process allowed, to lay them out side by side."""
    assert len(await _render_process_ids(tmp_path, 5)) == 1
    assert len(await _render_process_ids(tmp_path, 400)) == 2
