"""Which worker processes are alive, from the records they keep fresh (`WorkerProcess`)."""

from __future__ import annotations

from datetime import timedelta

from app.common.time import utcnow
from app.config import Settings
from app.runtime.models import WorkerProcess

# A worker that missed this many of its own heartbeats is taken for dead.
MISSED_HEARTBEATS = 3


async def live_worker_ids(settings: Settings) -> set[str]:
    """Ids of the workers whose record was refreshed within the last few heartbeats."""
    cutoff = utcnow() - timedelta(seconds=MISSED_HEARTBEATS * settings.worker_heartbeat_seconds)
    cursor = WorkerProcess.get_pymongo_collection().find(
        {"last_seen_at": {"$gte": cutoff}}, {"worker_id": 1}
    )
    return {str(doc["worker_id"]) async for doc in cursor}
