"""The scheduler tick: turns due schedules into jobs, exactly once per scheduled time.

Called once a minute by every worker. Safe to run concurrently and repeatedly:

1. every active schedule with `next_run_at <= now` is a candidate;
2. its job is created with `scheduled_for` = the slot; the unique index on report_jobs
   (schedule_id, scheduled_for) lets only one worker succeed, the others get
   `schedule-slot-taken` and treat the slot as done;
3. `next_run_at` moves on with a compare-and-set on its old value, so only one worker moves it
   and a repeated tick finds nothing due.

A crash between 2 and 3 is harmless: the next tick retries the same slot, meets the existing
job and moves on.

After downtime (`next_run_at` more than `ON_TIME_GRACE` in the past) the missed-run policy
applies: `skip` runs nothing for the missed slots and waits for the next future one (a slot
within the grace period still counts as on time); `run-once` runs one job for the latest missed
slot. Either way `next_run_at` becomes the first slot after now. The skipped slots are added to
`missed_runs`, counted up to `MAX_COUNTED_MISSED` per downtime (a `*/15` rule down for months
would take seconds to count, blocking the worker's event loop); the count runs in a thread.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta

import structlog
from beanie import PydanticObjectId

from app.common.time import as_utc, utcnow
from app.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from app.observability import SCHEDULER_LAG
from app.reports.jobs.requests import ScheduleSlotTaken
from app.reports.schedules import repository
from app.reports.schedules.digest import send_unsubscribe_digests
from app.reports.schedules.models import (
    MAX_COUNTED_MISSED,
    MissedRunPolicy,
    ReportSchedule,
    ScheduleStatus,
)
from app.reports.schedules.recurrence import Recurrence, latest_run_at_or_before, next_run
from app.reports.schedules.runner import (
    OwnerUnavailable,
    ScheduleBroken,
    pause_for,
    record_job_outcome,
    run_slot,
)
from app.runtime.resources import Resources

log = structlog.get_logger(__name__)

# A slot this late still counts as on time (the tick runs every minute, give or take).
ON_TIME_GRACE = timedelta(minutes=2)
# Due schedules read at a time; a tick reads batch after batch until none is left or its time
# is up (the rest are due on the next tick).
BATCH = 500
TICK_SECONDS = 40.0  # well inside the tick's cron timeout (55 s)

__all__ = ["MAX_COUNTED_MISSED", "ON_TIME_GRACE", "record_job_outcome", "run_due_schedules"]


async def run_due_schedules(resources: Resources, now: datetime | None = None) -> int:
    """Creates the jobs of every due schedule; returns how many jobs this call created."""
    now = as_utc(now) if now else utcnow()
    created = 0
    deadline = time.monotonic() + TICK_SECONDS
    after: tuple[datetime, PydanticObjectId] | None = None
    while time.monotonic() < deadline and (batch := await repository.due(now, BATCH, after)):
        last = batch[-1]
        assert last.next_run_at is not None and last.id is not None
        after = (last.next_run_at, last.id)
        # Every worker ticks at the same second and reads the same batch: each goes through
        # it in its own order, so they mostly take different schedules (a slot taken twice is
        # refused by the job's unique slot) and the tick's throughput grows with the workers.
        random.shuffle(batch)
        for schedule in batch:
            if time.monotonic() >= deadline:
                break
            try:
                created += await _run_schedule(resources, schedule, now)
            except Exception:  # one broken schedule must not stop the others
                log.exception("schedule_tick_failed", schedule_id=str(schedule.id))
    try:  # the owners' daily summaries of unsubscribes
        await send_unsubscribe_digests(resources.settings, now)
    except Exception:
        log.exception("unsubscribe_digests_failed")
    return created


def _slot_to_run(
    schedule: ReportSchedule, rule: Recurrence, due_at: datetime, now: datetime
) -> tuple[datetime | None, bool]:
    """(the slot to run now or None, whether slots were missed)."""
    if now - due_at <= ON_TIME_GRACE:
        return due_at, False
    on_time = latest_run_at_or_before(rule, now, not_before=now - ON_TIME_GRACE)
    if on_time is not None:
        return on_time, True
    if schedule.missed_run_policy == MissedRunPolicy.RUN_ONCE:
        latest = latest_run_at_or_before(rule, now, not_before=due_at - timedelta(microseconds=1))
        return latest or due_at, True
    return None, True


def _count_slots(rule: Recurrence, first: datetime, last: datetime, limit: int) -> int:
    """Slots in [first, last], counting no further than `limit`."""
    count, cursor = 0, first - timedelta(microseconds=1)
    while count < limit:
        slot = next_run(rule, cursor)
        if slot is None or slot > last:
            break
        count, cursor = count + 1, slot
    return count


async def _run_schedule(resources: Resources, schedule: ReportSchedule, now: datetime) -> int:
    assert schedule.id is not None and schedule.next_run_at is not None
    due_at = as_utc(schedule.next_run_at)
    rule = schedule.recurrence()
    slot, missed = _slot_to_run(schedule, rule, due_at, now)
    upcoming = next_run(rule, now)

    job_id: PydanticObjectId | None = None
    created = 0
    if slot is not None:
        try:
            job_id = await run_slot(resources, schedule, slot)
            created = 1
            SCHEDULER_LAG.observe((utcnow() - slot).total_seconds())
        except ScheduleSlotTaken:
            existing = await repository.job_for_slot(schedule.id, slot)
            job_id = existing.id if existing else None  # another worker ran it
        except (Conflict, Forbidden, NotFound, ValidationFailed) as exc:
            return await _pause(resources, schedule, due_at, exc)

    changes: dict[str, object] = {"next_run_at": upcoming}
    if slot is not None:
        changes.update(last_run_at=now, last_scheduled_for=slot, last_job_id=job_id)
    if upcoming is None:
        changes.update(status=ScheduleStatus.ENDED.value, ended_at=now)
    inc: dict[str, int] | None = None
    if missed:
        ran = 1 if slot is not None else 0
        counted = await asyncio.to_thread(_count_slots, rule, due_at, now, MAX_COUNTED_MISSED + ran)
        skipped = counted - ran
        if skipped > 0:
            inc = {"missed_runs": skipped}
            changes["last_missed_at"] = due_at
            log.info(
                "schedule_missed_runs",
                schedule_id=str(schedule.id),
                skipped=skipped,
                capped=skipped >= MAX_COUNTED_MISSED,
            )
    moved = await repository.advance(schedule.id, schedule.next_run_at, changes, inc)
    if moved and created:
        log.info(
            "schedule_fired",
            schedule_id=str(schedule.id),
            scheduled_for=slot.isoformat() if slot else None,
            job_id=str(job_id),
        )
    return created


async def _pause(
    resources: Resources, schedule: ReportSchedule, due_at: datetime, exc: AppError
) -> int:
    """The owner lost the right, or what the schedule runs is gone or no longer valid: the
    schedule stops by itself and says why (it resumes once fixed)."""
    if isinstance(exc, OwnerUnavailable | ScheduleBroken):
        reason = f"Paused automatically: {exc.detail}"
    else:
        reason = f"Paused automatically: running it as its owner failed ({exc.code}): {exc.detail}"
    assert schedule.next_run_at is not None
    await pause_for(
        resources.settings,
        schedule,
        reason[:1000],
        where={"next_run_at": schedule.next_run_at},
    )
    return 0
