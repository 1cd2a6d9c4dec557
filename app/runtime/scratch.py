"""Temporary work directories of worker processes, and the sweep of those a dead process left.

A worker process puts every temporary file of its jobs (the report being written, PDF and Excel
render scratch) under one directory of its own, `reports-worker-<host>-<pid>-…`, in the system's
temporary folder. A process killed with SIGKILL cannot clean up; the next worker on the host
removes the directories of processes that no longer exist, at start and periodically, and ends
the render processes recorded there that outlived their worker (`app.common.children`).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import structlog

from app.common.children import end_orphans

log = structlog.get_logger(__name__)

PREFIX = "reports-worker-"
# Work directories made outside a worker's own directory (before it existed, or by a worker
# running inside another process); removed once older than this.
LOOSE_PREFIXES = ("report-", "pdf-render-", "xlsx-render-")
LOOSE_MAX_AGE_SECONDS = 24 * 3600


def _host() -> str:
    return socket.gethostname().replace("-", "_")


def claim_scratch(base: Path | None = None) -> Path:
    """Makes this process's work directory and points `tempfile` (and child processes, through
    TMPDIR) at it."""
    root = Path(base or tempfile.gettempdir())
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{_host()}-{os.getpid()}-", dir=root))
    tempfile.tempdir = str(path)
    os.environ["TMPDIR"] = str(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep(base: Path, *, own: Path | None = None) -> int:
    """Removes the work directories under `base` of this host's dead worker processes (and loose
    ones older than a day), ending the orphaned child processes recorded in them. Returns how
    many directories went."""
    removed = orphans = 0
    host_prefix = f"{PREFIX}{_host()}-"
    now = time.time()
    try:
        entries = list(base.iterdir())
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        try:
            if not entry.is_dir() or entry.is_symlink() or entry == own:
                continue
            if name.startswith(host_prefix):
                pid_text = name[len(host_prefix) :].split("-", 1)[0]
                if not pid_text.isdigit() or _alive(int(pid_text)):
                    continue
            elif not (
                name.startswith(LOOSE_PREFIXES)
                and now - entry.stat().st_mtime > LOOSE_MAX_AGE_SECONDS
            ):
                continue
            # A render process that outlived its worker goes with the directory.
            orphans += end_orphans(entry)
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        except OSError:  # gone meanwhile, or not ours to read
            continue
    if removed:
        log.info("temp_dirs_swept", removed=removed, orphans_ended=orphans)
    return removed
