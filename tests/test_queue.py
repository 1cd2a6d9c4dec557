"""`app.queue._WakeableWorker` copies arq's private poll loop (`Worker.main`) and hooks two more
private methods. arq is pinned below its next minor; this test notices when even a patch
release changes any of them, before a silently diverging copy does."""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version

import arq.worker

# sha256 of `inspect.getsource(arq.worker.Worker.<name>)` for arq 0.28.0, the locked version.
RECORDED_ARQ_VERSION = "0.28.0"
RECORDED = {
    # mirrored line by line in `_WakeableWorker.main` (only the wait between polls differs)
    "main": "45ca1591c9717466eec76e17fa958f84acf6085103d692a84ee25d9904e7f8fc",
    # called once per loop turn by the copy
    "_poll_iteration": "f8d39d823a0a59f27a45f1c0e80bee44e16219d5072235fbc81866402298322f",
    # overridden to wake the loop when a job slot frees up
    "_release_sem_dec_counter_on_complete": (
        "0ed101482e942c33a64ccbe19eb3c4d29da9497258b1ffb1380da300da9bc481"
    ),
    # read by the copy's burst-mode exit
    "_jobs_started": "c5643370c110c7cdbd82eb713cad8be255f77be028d3bb35e20257befbe35c61",
}


def _fingerprint(name: str) -> str:
    source = inspect.getsource(getattr(arq.worker.Worker, name))
    return hashlib.sha256(source.encode()).hexdigest()


def test_arq_private_worker_loop_is_the_one_wakeable_worker_mirrors() -> None:
    changed = [name for name, digest in RECORDED.items() if _fingerprint(name) != digest]
    assert not changed, (
        f"arq {version('arq')} changed Worker.{', Worker.'.join(changed)} (recorded for arq "
        f"{RECORDED_ARQ_VERSION}). app/queue.py's _WakeableWorker copies arq's Worker.main "
        "and hooks _poll_iteration, _release_sem_dec_counter_on_complete and _jobs_started: "
        "compare the new arq source with the copy, carry over what changed (start-up, burst "
        "exit, the poll step), run tests/test_worker_process.py, then record the new digests "
        "and version here and move the arq pin in pyproject.toml."
    )
