"""The scheduler tick: exactly one job per (schedule, slot) under concurrency and repetition,
missed-run policies after downtime, end dates, and the schedule pausing itself when its owner
loses the right or its runs keep failing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from beanie import PydanticObjectId

from app.common.time import utcnow
from app.platform.models import Department, User
from app.reports.jobs.models import JobError, JobStatus, ReportJob
from app.reports.schedules import scheduler
from app.reports.schedules.models import (
    MAX_COUNTED_MISSED,
    MissedRunPolicy,
    ReportSchedule,
    ScheduleStatus,
)
from app.reports.schedules.recurrence import Frequency
from app.reports.schedules.runner import record_job_outcome
from app.reports.schedules.scheduler import run_due_schedules
from app.runtime.resources import Resources
from tests import factories
from tests.helpers.schedules import PARAMS, at, owner, schedule_for


async def jobs_of(schedule: ReportSchedule) -> list[ReportJob]:
    return await ReportJob.find({"schedule_id": schedule.id}).sort("+scheduled_for").to_list()


async def reload(schedule: ReportSchedule) -> ReportSchedule:
    fresh = await ReportSchedule.get(schedule.id)
    assert fresh is not None
    return fresh


async def test_due_schedule_creates_one_job_as_its_owner_and_moves_on(resources: Resources) -> None:
    user = await owner()
    slot = at(2026, 12, 1, 9)
    schedule = await schedule_for(user, slot, timezone="Europe/Berlin", time_of_day="10:00")
    assert await run_due_schedules(resources, now=slot + timedelta(seconds=20)) == 1
    [job] = await jobs_of(schedule)
    assert job.scheduled_for == slot and job.status == JobStatus.QUEUED
    assert job.requested_by.user_id == str(user.id) and job.requested_by.roles == ["manager"]
    # The schedule's timezone applies to the presets when the parameters name none.
    assert job.parameters["timezone"] == "Europe/Berlin"
    fresh = await reload(schedule)
    assert fresh.next_run_at == at(2026, 12, 2, 9)
    assert fresh.last_job_id == job.id and fresh.last_scheduled_for == slot
    # Not due yet: nothing happens.
    assert await run_due_schedules(resources, now=slot + timedelta(hours=1)) == 0


async def test_one_tick_runs_every_due_schedule_batch_after_batch(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More due schedules than one read holds (here batches of 4), some of them broken: one
    tick runs all the others, once each, and two ticks at once still create one job each."""
    monkeypatch.setattr(scheduler, "BATCH", 4)
    user = await owner()
    slot = at(2026, 12, 1, 9)
    # Equal due times across the batches' edges: the keyset goes by id within a time.
    schedules = [
        await schedule_for(user, slot + timedelta(seconds=n // 3), name=f"S{n}") for n in range(11)
    ]
    broken = schedules[1]  # its type was withdrawn: it fails every tick, and stays due
    await broken.set({"report_type": "no-such-type"})
    now = slot + timedelta(seconds=30)
    results = await asyncio.gather(*(run_due_schedules(resources, now=now) for _ in range(2)))
    assert sum(results) == 10
    for schedule in schedules:
        jobs = await jobs_of(schedule)
        assert len(jobs) == (0 if schedule is broken else 1), schedule.name
    assert await run_due_schedules(resources, now=now) == 0


async def test_three_concurrent_ticks_create_one_job_per_schedule(resources: Resources) -> None:
    user = await owner()
    slot = at(2026, 12, 1, 9)
    schedules = [await schedule_for(user, slot, name=f"S{n}") for n in range(4)]
    now = slot + timedelta(seconds=5)
    results = await asyncio.gather(*(run_due_schedules(resources, now=now) for _ in range(3)))
    assert sum(results) == 4
    for schedule in schedules:
        jobs = await jobs_of(schedule)
        assert [j.scheduled_for for j in jobs] == [slot]
        assert (await reload(schedule)).next_run_at == at(2026, 12, 2, 9)
    # A repeated tick (the same minute, or a late worker) creates nothing more.
    assert await run_due_schedules(resources, now=now) == 0
    assert await run_due_schedules(resources, now=now + timedelta(seconds=50)) == 0
    assert await ReportJob.find({}).count() == 4


async def test_crash_between_job_and_move_is_repaired_by_the_next_tick(
    resources: Resources,
) -> None:
    user = await owner()
    slot = at(2026, 12, 1, 9)
    schedule = await schedule_for(user, slot)
    await run_due_schedules(resources, now=slot)
    [job] = await jobs_of(schedule)
    # Simulate a worker that created the job but died before moving nextRunAt.
    await ReportSchedule.get_pymongo_collection().update_one(
        {"_id": schedule.id}, {"$set": {"next_run_at": slot}}
    )
    assert await run_due_schedules(resources, now=slot + timedelta(seconds=30)) == 0
    assert [j.id for j in await jobs_of(schedule)] == [job.id]
    fresh = await reload(schedule)
    assert fresh.next_run_at == at(2026, 12, 2, 9) and fresh.last_job_id == job.id


async def test_downtime_with_skip_runs_nothing_for_missed_slots(resources: Resources) -> None:
    user = await owner()
    schedule = await schedule_for(user, at(2026, 12, 1, 9))  # missed 1st, 2nd, 3rd
    now = at(2026, 12, 3, 15)
    assert await run_due_schedules(resources, now=now) == 0
    assert await jobs_of(schedule) == []
    fresh = await reload(schedule)
    assert fresh.next_run_at == at(2026, 12, 4, 9)
    assert fresh.missed_runs == 3 and fresh.status == ScheduleStatus.ACTIVE


async def test_downtime_with_skip_still_runs_a_slot_that_is_only_just_due(
    resources: Resources,
) -> None:
    user = await owner()
    schedule = await schedule_for(user, at(2026, 12, 1, 9))
    now = at(2026, 12, 3, 9, 1, 30)  # the 3rd's slot is 90 s old: on time
    assert await run_due_schedules(resources, now=now) == 1
    assert [j.scheduled_for for j in await jobs_of(schedule)] == [at(2026, 12, 3, 9)]
    fresh = await reload(schedule)
    assert fresh.next_run_at == at(2026, 12, 4, 9) and fresh.missed_runs == 2


async def test_downtime_with_run_once_runs_the_latest_missed_slot_once(
    resources: Resources,
) -> None:
    user = await owner()
    schedule = await schedule_for(
        user, at(2026, 12, 1, 9), missed_run_policy=MissedRunPolicy.RUN_ONCE
    )
    now = at(2026, 12, 3, 15)
    results = await asyncio.gather(*(run_due_schedules(resources, now=now) for _ in range(3)))
    assert sum(results) == 1
    assert [j.scheduled_for for j in await jobs_of(schedule)] == [at(2026, 12, 3, 9)]
    fresh = await reload(schedule)
    assert fresh.next_run_at == at(2026, 12, 4, 9) and fresh.missed_runs == 2
    assert await run_due_schedules(resources, now=now + timedelta(minutes=1)) == 0


async def test_past_end_date_the_schedule_ends(resources: Resources) -> None:
    user = await owner()
    schedule = await schedule_for(user, at(2026, 12, 1, 9), end_date="2026-12-01")
    assert await run_due_schedules(resources, now=at(2026, 12, 1, 9)) == 1
    fresh = await reload(schedule)
    assert fresh.status == ScheduleStatus.ENDED and fresh.next_run_at is None
    assert fresh.ended_at is not None
    assert await run_due_schedules(resources, now=at(2026, 12, 5)) == 0


async def test_inactive_owner_pauses_the_schedule(resources: Resources) -> None:
    user = await owner()
    slot = at(2026, 12, 1, 9)
    schedule = await schedule_for(user, slot)
    await User.get_pymongo_collection().update_one(
        {"_id": user.id}, {"$set": {"status": "inactive"}}
    )
    assert await run_due_schedules(resources, now=slot) == 0
    assert await jobs_of(schedule) == []
    fresh = await reload(schedule)
    assert fresh.status == ScheduleStatus.PAUSED
    assert fresh.paused_reason and "inactive" in fresh.paused_reason
    assert await run_due_schedules(resources, now=slot + timedelta(days=1)) == 0


async def test_missing_owner_or_lost_role_pauses_the_schedule(resources: Resources) -> None:
    gone = await owner()
    slot = at(2026, 12, 1, 9)
    orphan = await schedule_for(gone, slot, name="orphan")
    await User.get_pymongo_collection().delete_one({"_id": gone.id})

    demoted = await owner()
    lost_role = await schedule_for(demoted, slot, name="demoted")
    await User.get_pymongo_collection().update_one(
        {"_id": demoted.id}, {"$set": {"roles": ["learner"]}}
    )

    assert await run_due_schedules(resources, now=slot) == 0
    orphan_fresh, demoted_fresh = await reload(orphan), await reload(lost_role)
    assert orphan_fresh.status == ScheduleStatus.PAUSED
    assert "no longer exists" in (orphan_fresh.paused_reason or "")
    assert demoted_fresh.status == ScheduleStatus.PAUSED
    assert "role" in (demoted_fresh.paused_reason or "")


async def test_downtime_on_a_frequent_cron_counts_missed_runs_up_to_the_cap(
    resources: Resources,
) -> None:
    """A `*/15` rule down for 100 days has ~9,600 missed slots: the tick counts no more than
    MAX_COUNTED_MISSED of them instead of walking every slot on the event loop."""
    user = await owner()
    since = at(2026, 9, 1)
    now = since + timedelta(days=100, minutes=7)
    cron = {"frequency": Frequency.CRON, "cron_expression": "*/15 * * * *"}
    skip = await schedule_for(user, since, name="skip", **cron)
    once = await schedule_for(
        user, since, name="once", missed_run_policy=MissedRunPolicy.RUN_ONCE, **cron
    )
    assert await run_due_schedules(resources, now=now) == 1
    assert await jobs_of(skip) == []
    assert [j.scheduled_for for j in await jobs_of(once)] == [now - timedelta(minutes=7)]
    for schedule in (skip, once):
        fresh = await reload(schedule)
        assert fresh.next_run_at == now + timedelta(minutes=8)
        assert fresh.missed_runs == MAX_COUNTED_MISSED and fresh.last_missed_at == since
        assert fresh.status == ScheduleStatus.ACTIVE


async def test_manager_moved_to_another_department_pauses_the_schedule(
    resources: Resources,
) -> None:
    user = await owner()
    assert user.department_id is not None
    slot = at(2026, 12, 1, 9)
    schedule = await schedule_for(user, slot)
    elsewhere = await factories.department("Elsewhere")
    await User.get_pymongo_collection().update_one(
        {"_id": user.id}, {"$set": {"department_id": elsewhere.id}}
    )
    assert await run_due_schedules(resources, now=slot) == 0
    assert await jobs_of(schedule) == []
    fresh = await reload(schedule)
    assert fresh.status == ScheduleStatus.PAUSED
    reason = fresh.paused_reason or ""
    assert reason.startswith("Paused automatically:")
    assert str(elsewhere.id) in reason and str(user.department_id) in reason
    assert await run_due_schedules(resources, now=slot + timedelta(days=1)) == 0


async def test_manager_moved_within_their_departments_keeps_running(
    resources: Resources,
) -> None:
    user = await owner()
    parent = await Department.get(user.department_id)
    assert parent is not None
    team = await factories.department("Team", parent=parent)
    slot = at(2026, 12, 1, 9)
    schedule = await schedule_for(user, slot)
    await User.get_pymongo_collection().update_one(
        {"_id": user.id}, {"$set": {"department_id": team.id}}
    )
    assert await run_due_schedules(resources, now=slot) == 1
    [job] = await jobs_of(schedule)
    assert job.requested_by.department_ids == [str(parent.id)]
    assert (await reload(schedule)).status == ScheduleStatus.ACTIVE


async def test_owner_out_of_scope_at_run_time_pauses_the_schedule(resources: Resources) -> None:
    user = await owner()
    elsewhere = await factories.department("Elsewhere")
    slot = at(2026, 12, 1, 9)
    schedule = await schedule_for(
        user, slot, parameters={**PARAMS, "departmentIds": [str(elsewhere.id)]}
    )
    assert await run_due_schedules(resources, now=slot) == 0
    fresh = await reload(schedule)
    assert fresh.status == ScheduleStatus.PAUSED
    assert str(elsewhere.id) in (fresh.paused_reason or "")


def finished(schedule: ReportSchedule, status: JobStatus, n: int) -> ReportJob:
    return ReportJob(
        id=PydanticObjectId(),
        report_type="learner-progress",
        format="csv",
        requested_by=schedule.owner,
        schedule_id=schedule.id,
        scheduled_for=at(2026, 12, n, 9),
        status=status,
        error=JobError(code="job-interrupted", message="disk full")
        if status == JobStatus.FAILED
        else None,
    )


async def test_consecutive_failures_pause_after_the_limit(resources: Resources) -> None:
    limit = resources.settings.schedule_max_consecutive_failures
    user = await owner()
    schedule = await schedule_for(user, utcnow() + timedelta(days=1))

    await record_job_outcome(resources.settings, finished(schedule, JobStatus.FAILED, 1))
    await record_job_outcome(resources.settings, finished(schedule, JobStatus.COMPLETED, 2))
    assert (await reload(schedule)).consecutive_failures == 0

    failed = [finished(schedule, JobStatus.FAILED, n) for n in range(3, 3 + limit)]
    for job in failed[:-1]:
        await record_job_outcome(resources.settings, job)
        await record_job_outcome(resources.settings, job)  # reported twice: counted once
    fresh = await reload(schedule)
    assert fresh.consecutive_failures == limit - 1 and fresh.status == ScheduleStatus.ACTIVE

    await record_job_outcome(
        resources.settings, finished(schedule, JobStatus.CANCELLED, 20)
    )  # not a failure
    await record_job_outcome(resources.settings, failed[-1])
    fresh = await reload(schedule)
    assert fresh.status == ScheduleStatus.PAUSED
    assert fresh.consecutive_failures == limit
    assert f"{limit} consecutive failed runs" in (fresh.paused_reason or "")
    assert "disk full" in (fresh.paused_reason or "")


async def test_outcome_of_a_job_without_schedule_is_ignored(resources: Resources) -> None:
    """A failed job that belongs to no schedule counts against none: not even reported as
    often as the failure limit does it touch a schedule."""
    user = await owner()
    schedule = await schedule_for(user, utcnow() + timedelta(days=1))
    before = await reload(schedule)
    job = ReportJob(
        id=PydanticObjectId(),
        report_type="learner-progress",
        format="csv",
        requested_by=schedule.owner,
        status=JobStatus.FAILED,
        error=JobError(code="job-interrupted", message="disk full"),
    )
    for _ in range(resources.settings.schedule_max_consecutive_failures + 1):
        await record_job_outcome(resources.settings, job)
    after = await reload(schedule)
    assert after.status == ScheduleStatus.ACTIVE
    assert after.consecutive_failures == 0
    assert after.last_outcome_job_id is None
    assert after.paused_reason is None
    assert after.updated_at == before.updated_at
