"""Schedule -> auto-execute -> verify, with three real worker processes running their real
once-a-minute tick: two schedules due in the same minute each run once, within the minute,
their file is right and every recipient gets exactly one message."""

from __future__ import annotations

import asyncio
import csv
import io
import signal
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app.common.time import utcnow
from app.main import create_app
from app.reports.deliveries.signing import verify
from app.reports.jobs.models import ReportJob
from app.runtime.resources import Resources
from tests.helpers.api import api_client
from tests.helpers.deliveries import Mailbox, Receiver, delivery_people, schedule_body
from tests.helpers.processes import kill_group as _kill_group
from tests.helpers.processes import start_worker as _start_worker
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"


async def _runs(c: httpx.AsyncClient, schedule_id: str, headers: dict[str, str]) -> list[Any]:
    page = await c.get(f"{SCHEDULES}/{schedule_id}/runs", headers=headers)
    assert page.status_code == 200, page.text
    return list(page.json()["items"])


async def _check_plain_run(
    c: httpx.AsyncClient, runs: list[Any], slot: datetime, headers: dict[str, str]
) -> None:
    """The schedule without recipients: one run for the slot, started within its minute, and
    the file holds the one learner."""
    assert len(runs) == 1, runs
    run = runs[0]
    assert run["status"] == "completed", run
    job = await ReportJob.get(str(run["id"]))
    assert job is not None and job.started_at is not None
    assert job.scheduled_for == slot
    assert job.started_at - slot < timedelta(minutes=1)
    assert await ReportJob.find({"schedule_id": job.schedule_id}).count() == 1

    file = await c.get(f"/api/v1/reports/jobs/{run['id']}/download", headers=headers)
    assert file.status_code == 200
    rows = list(csv.reader(io.StringIO(file.content.decode("utf-8-sig"))))
    assert len(rows) == 2 and "Lars Learner" in rows[1]


@pytest.mark.slow
async def test_two_schedules_due_next_minute_run_and_deliver_once_with_three_workers(
    delivery_resources: Resources,
    auth: TokenFactory,
    smtp_server: Mailbox,
    http_receiver: Receiver,
) -> None:
    """One schedule without recipients; one for two platform users, one external address on an
    allowed domain and one webhook: each gets exactly one message, the webhook one call whose
    signature verifies, and the run history shows every delivery `sent`."""
    settings = delivery_resources.settings
    people = await delivery_people(auth)
    ann, ben, headers = people.ann, people.ben, people.headers
    application = create_app(settings, resources=delivery_resources)

    workers = [_start_worker(settings) for _ in range(3)]
    try:
        async with application.router.lifespan_context(application), api_client(application) as c:
            # At least 20 s away: the workers must be up and the schedules stored before the tick.
            slot = (utcnow() + timedelta(seconds=80)).replace(second=0, microsecond=0)
            time_of_day = slot.strftime("%H:%M")
            plain = await c.post(
                SCHEDULES,
                json=schedule_body(name="Daily progress", timeOfDay=time_of_day),
                headers=headers,
            )
            assert plain.status_code == 201, plain.text
            plain_id = plain.json()["id"]
            assert plain.json()["nextRuns"][0]["utc"].startswith(slot.strftime("%Y-%m-%dT%H:%M"))
            mailed = await c.post(
                SCHEDULES,
                json=schedule_body(
                    timeOfDay=time_of_day,
                    recipients=[str(ann.id), str(ben.id), "partner@example.org"],
                    webhooks=[{"url": http_receiver.url()}],
                ),
                headers=headers,
            )
            assert mailed.status_code == 201, mailed.text
            schedule = mailed.json()
            secret = schedule["webhooks"][0]["secret"]

            deadline = asyncio.get_running_loop().time() + 170
            plain_runs: list[Any] = []
            runs: list[Any] = []
            deliveries: list[dict[str, object]] = []
            while asyncio.get_running_loop().time() < deadline:
                plain_runs = await _runs(c, plain_id, headers)
                runs = await _runs(c, schedule["id"], headers)
                deliveries = runs[0]["deliveries"] if runs else []
                plain_done = plain_runs and plain_runs[0]["status"] in ("completed", "failed")
                if (
                    plain_done
                    and len(deliveries) == 4
                    and {d["status"] for d in deliveries} == {"sent"}
                ):
                    break
                await asyncio.sleep(1)
            assert len(runs) == 1 and runs[0]["status"] == "completed", runs
            assert {d["status"] for d in deliveries} == {"sent"}, deliveries
            await asyncio.sleep(3)  # the other workers' ticks pass; any duplicate arrives
            await _check_plain_run(c, await _runs(c, plain_id, headers), slot, headers)
            assert len(await _runs(c, schedule["id"], headers)) == 1

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
