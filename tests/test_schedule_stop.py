"""Pausing or deleting a schedule stops the run under way, against a real worker process, a
real SMTP server and a webhook receiver on 127.0.0.1: the running run ends cancelled within
seconds, nothing of it is e-mailed or posted, the link an earlier run sent answers 410, and a
run that completes while the schedule is paused or gone delivers nothing. A delivery its dead
sender still held when the schedule stopped is not sent again."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest

from app.errors import Conflict
from app.main import create_app
from app.reports.deliveries import repository, service
from app.reports.deliveries.models import (
    DeliveryConfig,
    DeliveryStatus,
    Recipient,
    ReportDelivery,
)
from app.reports.deliveries.planning import plan_deliveries
from app.reports.deliveries.sender import send_due
from app.reports.deliveries.signing import generate_secret
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.schedules import runner
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.deliveries import (
    NOW,
    Mailbox,
    Receiver,
    completed_job,
    delivery_people,
    schedule_body,
)
from tests.helpers.jobs import finished_job, insert_enrollments
from tests.helpers.polling import wait_until
from tests.helpers.processes import kill_group, start_worker
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"
JOBS = "/api/v1/reports/jobs"
LINK = re.compile(r"https://reports\.example(/api/v1/reports/deliveries/\S+)")
YEAR = {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}}


@pytest.fixture
async def api(delivery_resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as c:
        yield c


async def _run_now(api: httpx.AsyncClient, schedule_id: str, headers: dict[str, str]) -> str:
    run = await api.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=headers)
    assert run.status_code == 202, run.text
    return str(run.json()["id"])


async def _rendering(job_id: str) -> bool:
    job = await ReportJob.get(job_id)
    return bool(job and job.status == JobStatus.RUNNING and job.progress.step == "render")


@pytest.mark.parametrize("action", ["pause", "delete"])
async def test_pausing_or_deleting_stops_the_run_under_way_and_revokes_sent_links(
    api: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    smtp_server: Mailbox,
    http_receiver: Receiver,
    action: str,
) -> None:
    people = await delivery_people(auth)
    ann, headers = people.ann, people.headers
    course = await f.course("OPS-1", title="Operations handbook " * 3)
    await insert_enrollments(course, await f.department("Operations", code="OPS"), 600)
    created = await api.post(
        SCHEDULES,
        json=schedule_body(
            recipients=[str(ann.id)],
            delivery="link",
            webhooks=[{"url": http_receiver.url()}],
            parameters=YEAR,
        ),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    url = f"{SCHEDULES}/{schedule_id}"

    worker = start_worker(delivery_resources.settings)
    try:
        # A first run is delivered: one e-mail with a working link, one webhook call.
        first = await _run_now(api, schedule_id, headers)
        await wait_until(lambda: _sent(first), 90, "the first run's deliveries")
        [message] = smtp_server.messages()
        match = LINK.search(str(message.get_body(preferencelist=("plain",)).get_content()))  # type: ignore[union-attr]
        assert match, message
        link = match.group(1)
        assert (await api.get(link)).status_code == 200
        assert len(http_receiver.requests) == 1

        # A second run, as a PDF that takes a while to render, is stopped half-way.
        changed = await api.patch(url, json={"format": "pdf"}, headers=headers)
        assert changed.status_code == 200, changed.text
        second = await _run_now(api, schedule_id, headers)
        await wait_until(lambda: _rendering(second), 90, "the second run's render step")
        asked = time.monotonic()
        if action == "pause":
            stopped = await api.post(f"{url}/pause", json={}, headers=headers)
            assert stopped.status_code == 200, stopped.text
        else:
            stopped = await api.delete(url, headers=headers)
            assert stopped.status_code == 204, stopped.text
        ended = await wait_until(lambda: finished_job(second), 30, "the second run to end")
        assert ended is not None
        took = time.monotonic() - asked
        print(f"\n{action}: the running run ended {ended.status.value} {took:.2f} s after")
        assert ended.status == JobStatus.CANCELLED and ended.result is None
        assert took < 10, took

        # The link already sent is revoked; the stopped run sent nothing.
        gone = await api.get(link)
        assert gone.status_code == 410 and gone.json()["code"] == "delivery-link-revoked"

        # A run that completes anyway (asked for while paused, or a retry of a run of a
        # deleted schedule) delivers nothing either.
        if action == "pause":
            await api.patch(url, json={"format": "csv"}, headers=headers)
            third = await _run_now(api, schedule_id, headers)
        else:
            assert (await api.get(url, headers=headers)).status_code == 404
            retried = await api.post(f"{JOBS}/{second}/retry", headers=headers)
            assert retried.status_code == 202, retried.text
            third = str(retried.json()["id"])
        done = await wait_until(lambda: finished_job(third), 120, "the run after the stop")
        assert done is not None
        assert done.status == JobStatus.COMPLETED, done.error
        stored = await ReportDelivery.find({"job_id": {"$in": [done.id, ended.id]}}).to_list()
        assert stored == []  # nothing planned for either
        await wait_until(_quiet_for(2, smtp_server, http_receiver), 15, "two quiet seconds")
    finally:
        kill_group(worker, signal.SIGTERM)
        worker.wait(30)
    assert len(smtp_server.messages()) == 1
    assert len(http_receiver.requests) == 1


async def _sent(job_id: str) -> bool:
    job = await ReportJob.get(job_id)
    if job is None:
        return False
    stored = await ReportDelivery.find({"job_id": job.id}).to_list()
    return len(stored) == 2 and all(d.status == DeliveryStatus.SENT for d in stored)


def _quiet_for(
    seconds: float, smtp_server: Mailbox, receiver: Receiver
) -> Callable[[], Awaitable[bool]]:
    """A predicate that is true once nothing new arrived for `seconds`."""
    counts: tuple[int, int] | None = None
    since = time.monotonic()

    async def quiet() -> bool:
        nonlocal counts, since
        now = (len(smtp_server.messages()), len(receiver.requests))
        if now != counts:
            counts, since = now, time.monotonic()
        return time.monotonic() - since >= seconds

    return quiet


async def test_a_delivery_held_by_a_dead_sender_is_not_sent_after_its_schedule_stopped(
    delivery_resources: Resources, smtp_server: Mailbox, http_receiver: Receiver
) -> None:
    """A sender died while sending (the delivery stays `sending` until its lease expires);
    the schedule is paused meanwhile: the sender that takes it over cancels it instead of
    sending it again, and its owner cannot resend it."""
    res = delivery_resources
    job = await completed_job(res)
    endpoint = await repository.create_endpoint(
        owner_user_id="owner-1", url=http_receiver.url(), secret=generate_secret()
    )
    assert endpoint.id is not None and job.schedule_id is not None
    planned = plan_deliveries(
        job,
        DeliveryConfig(
            recipients=[Recipient(address="ann@school.example")],
            webhook_endpoint_ids=[endpoint.id],
        ),
        [endpoint],
        res.settings,
        report_name="Monthly progress",
        now=NOW,
    )
    await repository.insert_many(planned)
    held = await repository.claim_next(owner="dead", token="t", lease_seconds=20, now=NOW)
    assert held is not None  # and its sender dies here

    await runner.stop_runs(job.schedule_id)  # what pausing or deleting the schedule does
    later = NOW + timedelta(seconds=21)
    assert await send_due(res, worker_id="w2", now=later) == 1  # the held one, taken over
    assert smtp_server.messages() == [] and http_receiver.requests == []
    stored = await repository.for_job(job.id)  # type: ignore[arg-type]
    assert {d.status for d in stored} == {DeliveryStatus.CANCELLED}
    assert {d.last_error for d in stored} == {"schedule stopped"}
    with pytest.raises(Conflict) as refused:
        await service.resend(res.settings, str(held.id), user_id="owner-1", is_admin=False)
    assert refused.value.code == "delivery-not-resendable"
