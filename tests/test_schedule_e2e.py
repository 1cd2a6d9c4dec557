"""Schedule -> auto-execute -> verify, with three real worker processes running their real
once-a-minute tick: the slot runs once, within a minute, and its file is right."""

from __future__ import annotations

import asyncio
import csv
import io
import signal
from datetime import timedelta

import httpx
import pytest

from app.common.time import utcnow
from app.main import create_app
from app.reports.deliveries.signing import verify
from app.reports.jobs.models import ReportJob
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.deliveries import Mailbox, Receiver, delivery_people, schedule_body
from tests.helpers.processes import kill_group as _kill_group
from tests.helpers.processes import start_worker as _start_worker
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"


@pytest.mark.slow
async def test_a_schedule_due_next_minute_runs_once_with_three_workers(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    dept = await f.department("Finance", code="FIN")
    owner = await f.user("Olga Owner", dept=dept, roles=["admin"])
    learner = await f.user("Lars Learner", dept=dept)
    await f.enrollment(learner, await f.course("FIN-1"), enrolled_at=utcnow() - timedelta(days=2))
    headers = auth("admin", sub=str(owner.id), name="Olga Owner")

    workers = [_start_worker() for _ in range(3)]
    try:
        # At least 20 s away: the workers must be up and the schedule stored before its tick.
        slot = (utcnow() + timedelta(seconds=80)).replace(second=0, microsecond=0)
        created = await client.post(
            SCHEDULES,
            json={
                "name": "Daily progress",
                "reportType": "learner-progress",
                "format": "csv",
                "parameters": {"dateRange": {"preset": "last-7-days"}},
                "frequency": "daily",
                "timeOfDay": slot.strftime("%H:%M"),
                "timezone": "UTC",
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        schedule = created.json()
        assert schedule["nextRuns"][0]["utc"].startswith(slot.strftime("%Y-%m-%dT%H:%M"))

        deadline = asyncio.get_running_loop().time() + 150
        runs: list[dict[str, object]] = []
        while asyncio.get_running_loop().time() < deadline:
            page = await client.get(f"{SCHEDULES}/{schedule['id']}/runs", headers=headers)
            runs = page.json()["items"]
            if runs and runs[0]["status"] in ("completed", "failed"):
                break
            await asyncio.sleep(1)
        assert len(runs) == 1, runs
        run = runs[0]
        assert run["status"] == "completed", run
        job = await ReportJob.get(str(run["id"]))
        assert job is not None and job.started_at is not None
        assert job.scheduled_for == slot
        assert job.started_at - slot < timedelta(minutes=1)
        await asyncio.sleep(2)  # let the other workers' ticks pass too
        assert await ReportJob.find({"schedule_id": job.schedule_id}).count() == 1

        file = await client.get(f"/api/v1/reports/jobs/{run['id']}/download", headers=headers)
        assert file.status_code == 200
        rows = list(csv.reader(io.StringIO(file.content.decode("utf-8-sig"))))
        assert len(rows) == 2 and "Lars Learner" in rows[1]
    finally:
        for worker in workers:
            _kill_group(worker, signal.SIGTERM)
        for worker in workers:
            worker.wait(30)


@pytest.mark.slow
async def test_a_due_schedule_delivers_once_to_every_recipient_with_three_workers(
    delivery_resources: Resources,
    auth: TokenFactory,
    smtp_server: Mailbox,
    http_receiver: Receiver,
) -> None:
    """Two platform users, one external address on an allowed domain and one webhook: each
    gets exactly one message, the webhook one call whose signature verifies, and the run
    history shows every delivery `sent`."""
    settings = delivery_resources.settings
    people = await delivery_people(auth)
    ann, ben, headers = people.ann, people.ben, people.headers
    application = create_app(settings, resources=delivery_resources)

    workers = [_start_worker(settings) for _ in range(3)]
    try:
        async with application.router.lifespan_context(application), api_client(application) as c:
            slot = (utcnow() + timedelta(seconds=80)).replace(second=0, microsecond=0)
            created = await c.post(
                SCHEDULES,
                json=schedule_body(
                    timeOfDay=slot.strftime("%H:%M"),
                    recipients=[str(ann.id), str(ben.id), "partner@example.org"],
                    webhooks=[{"url": http_receiver.url()}],
                ),
                headers=headers,
            )
            assert created.status_code == 201, created.text
            schedule = created.json()
            secret = schedule["webhooks"][0]["secret"]

            deadline = asyncio.get_running_loop().time() + 170
            deliveries: list[dict[str, object]] = []
            while asyncio.get_running_loop().time() < deadline:
                page = await c.get(f"{SCHEDULES}/{schedule['id']}/runs", headers=headers)
                runs = page.json()["items"]
                deliveries = runs[0]["deliveries"] if runs else []
                if len(deliveries) == 4 and all(d["status"] == "sent" for d in deliveries):
                    break
                await asyncio.sleep(1)
            assert len(runs) == 1 and runs[0]["status"] == "completed", runs
            assert {d["status"] for d in deliveries} == {"sent"}, deliveries
            await asyncio.sleep(3)  # any duplicate would arrive meanwhile

        messages = smtp_server.messages()
        assert sorted(m["To"] for m in messages) == [
            "ann@example.test",
            "ben@example.test",
            "partner@example.org",
        ]
        [call] = http_receiver.requests
        assert verify(secret, call.headers, call.body).startswith("msg_")
    finally:
        for worker in workers:
            _kill_group(worker, signal.SIGTERM)
        for worker in workers:
            worker.wait(30)
