"""Processes a worker starts for its jobs (the PDF render processes) end with it.

A render process waits on its pool's task queue, and nothing tells it when its worker is killed
(SIGKILL, out of memory): it would live on, reparented to init, and so would the multiprocessing
resource tracker, which stays as long as any of them holds its pipe. So each render process, as
it starts (`guard_child`, the pool's initializer):

- asks Linux to SIGKILL it when its parent dies (`prctl(PR_SET_PDEATHSIG)`). The signal comes
  when the *thread* that started it ends: the render processes are started from the event loop's
  thread, which lives as long as the worker;
- checks that its parent is still the process that started it (it may have died before the
  `prctl`), and watches for that from a thread every second (where there is no `prctl`);
- records itself (pid, start time, parent pid) in a directory under its worker's work directory.
  The sweep of a dead worker's directory (`app.runtime.scratch.sweep`) ends a recorded process
  that outlived its worker anyway, and only one it can prove is that orphan: the same pid *and*
  start time as recorded (not a later process given the same pid), alive, and no longer the
  child of the recorded parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time
from pathlib import Path

RECORD_PREFIX = "child-process-"
PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 1.0


def guard_child(parent_pid: int, record_dir: str | None) -> None:
    """The initializer of a worker's child process (see the module's docstring). Never raises:
    a failing initializer would break the pool."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True
    ).start()
    if record_dir is not None:
        with contextlib.suppress(OSError):
            record(Path(record_dir), parent_pid)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)


def record(directory: Path, parent_pid: int) -> Path | None:
    """Writes this process's record in `directory`; None where start times cannot be read."""
    pid = os.getpid()
    stat = process_stat(pid)
    if stat is None:
        return None
    path = directory / f"{RECORD_PREFIX}{pid}"
    path.write_text(f"{pid} {stat.start_time} {parent_pid}\n")
    return path


class ProcessStat:
    """What /proc/<pid>/stat says about a process: its state, parent and start time (clock
    ticks after boot, which tells a process from a later one given the same pid)."""

    def __init__(self, state: str, parent_pid: int, start_time: int) -> None:
        self.state, self.parent_pid, self.start_time = state, parent_pid, start_time

    @property
    def running(self) -> bool:
        return self.state not in ("Z", "X")  # a zombie has ended; only its entry is left


def process_stat(pid: int) -> ProcessStat | None:
    """None when the process does not exist (or there is no /proc)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (2nd field) is in parentheses and may hold spaces or parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    try:
        return ProcessStat(fields[0], int(fields[1]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def end_orphans(directory: Path) -> int:
    """Kills the recorded child processes under `directory` (a dead worker's work directory)
    that are provably orphans; returns how many."""
    ended = 0
    try:
        records = list(directory.rglob(f"{RECORD_PREFIX}*"))
    except OSError:
        return 0
    for path in records:
        try:
            if path.stat().st_uid != os.getuid():  # only what a process of ours wrote
                continue
            pid, start_time, parent_pid = (int(part) for part in path.read_text().split())
        except (OSError, ValueError):
            continue
        stat = process_stat(pid)
        if (
            stat is None
            or not stat.running
            or stat.start_time != start_time
            or stat.parent_pid == parent_pid
        ):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            ended += 1
    return ended
