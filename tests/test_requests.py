"""The one road from a report request to a job, seen from every entry point: an
Idempotency-Key replay answers the same way everywhere, and a retried scheduled job stays part
of its schedule."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from app.common.time import utcnow
from app.reports.jobs.models import JobError, JobStatus, ReportJob
from app.reports.schedules.models import ReportSchedule
from app.reports.schedules.runner import record_job_outcome
from app.reports.schedules.scheduler import run_due_schedules
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
TEMPLATES = "/api/v1/reports/templates"
SCHEDULES = "/api/v1/reports/schedules"
PARAMETERS = {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}}

Post = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


async def _owner_headers(auth: TokenFactory) -> dict[str, str]:
    owner = await f.user("Olga Owner", dept=await f.department(), roles=["admin"])
    return auth("admin", sub=str(owner.id), name="Olga Owner")


async def _created(client: httpx.AsyncClient, url: str, body: dict[str, Any], **kw: Any) -> str:
    response = await client.post(url, json=body, **kw)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _template(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = {"name": "Progress", "reportType": "learner-progress", "format": "csv"}
    return await _created(client, TEMPLATES, {**body, "parameters": PARAMETERS}, headers=headers)


async def _schedule(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = {"name": "Daily", "reportType": "learner-progress", "format": "csv"}
    timing = {"frequency": "daily", "timeOfDay": "09:00", "timezone": "UTC"}
    return await _created(
        client, SCHEDULES, {**body, **timing, "parameters": PARAMETERS}, headers=headers
    )


async def _post_job(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    body = {"reportType": "learner-progress", "format": "csv", "parameters": PARAMETERS}
    return await client.post(JOBS, json=body, headers=headers)


async def _post_job_from_template(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> httpx.Response:
    template_id = await _template(client, headers)
    return await client.post(JOBS, json={"templateId": template_id}, headers=headers)


async def _run_template(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    template_id = await _template(client, headers)
    return await client.post(f"{TEMPLATES}/{template_id}/run", headers=headers)


async def _run_schedule_now(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    schedule_id = await _schedule(client, headers)
    return await client.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=headers)


@pytest.mark.parametrize(
    "entry",
    [_post_job, _post_job_from_template, _run_template, _run_schedule_now],
    ids=["jobs", "jobs-with-template", "template-run", "schedule-run-now"],
)
async def test_an_idempotency_key_replay_is_200_with_the_replayed_header_on_every_path(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, entry: Post
) -> None:
    headers = {**await _owner_headers(auth), "Idempotency-Key": "same-request"}
    first = await entry(client, headers)
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    job_id = first.json()["id"]

    # The same request again: the template / schedule the entry point made the first time is
    # reused, so the second call is the very same request.
    replay = await _again(client, headers, entry, first)
    assert replay.status_code == 200, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == job_id
    assert replay.headers["location"] == f"{JOBS}/{job_id}"
    assert await ReportJob.count() == 1


async def _again(
    client: httpx.AsyncClient, headers: dict[str, str], entry: Post, first: httpx.Response
) -> httpx.Response:
    """Repeats the request `entry` made, against the same template or schedule."""
    job = first.json()
    if entry is _post_job:
        return await _post_job(client, headers)
    if entry is _post_job_from_template:
        return await client.post(JOBS, json={"templateId": job["templateId"]}, headers=headers)
    if entry is _run_template:
        return await client.post(f"{TEMPLATES}/{job['templateId']}/run", headers=headers)
    return await client.post(f"{SCHEDULES}/{job['scheduleId']}/run-now", headers=headers)


async def test_a_retried_scheduled_job_stays_in_its_schedule_and_its_success_resets_failures(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, run_worker: Any
) -> None:
    headers = await _owner_headers(auth)
    schedule_id = await _schedule(client, headers)
    schedule = await ReportSchedule.get(schedule_id)
    assert schedule is not None and schedule.next_run_at is not None
    assert await run_due_schedules(resources, now=schedule.next_run_at) == 1

    # The slot's job fails, as the worker would record it.
    slot_job = await ReportJob.find_one({"schedule_id": schedule.id})
    assert slot_job is not None and slot_job.scheduled_for is not None
    slot_job.status = JobStatus.FAILED
    slot_job.error = JobError(code="job-interrupted", message="disk full")
    slot_job.finished_at = utcnow()
    await slot_job.save()
    await record_job_outcome(resources.settings, slot_job)
    failing = await ReportSchedule.get(schedule_id)
    assert failing is not None and failing.consecutive_failures == 1

    retried = await client.post(f"{JOBS}/{slot_job.id}/retry", headers=headers)
    assert retried.status_code == 202, retried.text
    retry = retried.json()
    assert retry["scheduleId"] == schedule_id
    assert retry["retryOfJobId"] == str(slot_job.id)
    assert retry.get("scheduledFor") is None  # the slot stays the original's
    # A second retry of the same failed job does not collide with the first on the slot index.
    again = await client.post(f"{JOBS}/{slot_job.id}/retry", headers=headers)
    assert again.status_code == 202, again.text
    await client.post(f"{JOBS}/{again.json()['id']}/cancel", headers=headers)

    runs = await client.get(f"{SCHEDULES}/{schedule_id}/runs", headers=headers)
    assert runs.status_code == 200
    run_ids = [r["id"] for r in runs.json()["items"]]
    assert retry["id"] in run_ids and str(slot_job.id) in run_ids

    await run_worker()
    done = await client.get(f"{JOBS}/{retry['id']}", headers=headers)
    assert done.json()["status"] == "completed", done.text
    recovered = await ReportSchedule.get(schedule_id)
    assert recovered is not None
    assert recovered.consecutive_failures == 0
    assert recovered.last_outcome_job_id is not None
    assert str(recovered.last_outcome_job_id) == retry["id"]
