"""Fingerprint files no baseline needs any more, swept from storage.

A run's fingerprints (`baselines/<schedule>/<scope>/<job>-a<attempt>.jsonl.gz`) outlive its
report file while they are a scope's baseline. The completing commit deletes the baseline it
replaces; what is left behind otherwise — a deleted schedule's files, the baselines dropped
when `changes` is set again or the compared request changes, a killed attempt's — is swept
here: a file goes once its run is over (no attempt of its job can still move a baseline to it)
and it is no scope's baseline. The jobs are read before the schedules, so a run that commits in
between is seen as the baseline it just became.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import structlog
from bson import ObjectId

from app.reports.jobs.models import ACTIVE_STATUSES, ReportJob
from app.reports.schedules.changes.runs import BASELINES_PREFIX
from app.reports.schedules.models import ReportSchedule
from app.storage import Storage

log = structlog.get_logger(__name__)
IDS_PER_QUERY = 1000

_KEY = re.compile(r"^baselines/([0-9a-f]{24})/[0-9a-f]+/([0-9a-f]{24})-a\d+\.jsonl\.gz$")


def _slices(ids: Sequence[ObjectId]) -> Iterator[list[ObjectId]]:
    for at in range(0, len(ids), IDS_PER_QUERY):
        yield list(ids[at : at + IDS_PER_QUERY])


async def _running(job_ids: Sequence[ObjectId]) -> set[ObjectId]:
    active = [s.value for s in ACTIVE_STATUSES]
    running: set[ObjectId] = set()
    for ids in _slices(job_ids):
        cursor = ReportJob.get_pymongo_collection().find(
            {"_id": {"$in": ids}, "status": {"$in": active}}, {"_id": 1}
        )
        running |= {doc["_id"] async for doc in cursor}
    return running


async def _kept_keys(schedule_ids: Sequence[ObjectId]) -> set[str]:
    kept: set[str] = set()
    for ids in _slices(schedule_ids):
        cursor = ReportSchedule.get_pymongo_collection().find(
            {"_id": {"$in": ids}}, {"change_baselines": 1}
        )
        async for doc in cursor:
            kept |= {b.get("key") for b in (doc.get("change_baselines") or {}).values()}
    return kept


async def sweep_baselines(storage: Storage) -> int:
    """Deletes the fingerprint files no scope's baseline is and no running job may become;
    returns how many went."""
    found: list[tuple[str, ObjectId, ObjectId]] = []
    for key in await storage.list_keys(BASELINES_PREFIX):
        match = _KEY.match(key)
        if match:  # anything else under the prefix is not ours to judge
            found.append((key, ObjectId(match[1]), ObjectId(match[2])))
    if not found:
        return 0
    running = await _running(sorted({job for _, _, job in found}))
    kept = await _kept_keys(sorted({schedule for _, schedule, _ in found}))
    deleted = 0
    for key, _, job in found:
        if job in running or key in kept:
            continue
        try:
            await storage.delete(key)
            deleted += 1
        except Exception as exc:  # one unreachable file must not stop the sweep
            log.warning("baseline_delete_failed", key=key, error=str(exc)[:200])
    if deleted:
        log.info("baselines_swept", files=deleted)
    return deleted
