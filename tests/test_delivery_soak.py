"""Delivery under SIGKILL (make soak): real worker processes are killed right after a job's
commit and while its messages go out, ten times; a fresh worker finishes. Every delivery ends
`sent`, none is lost, and copies of one delivery (if any) carry the same Message-ID."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter

import pytest

from app.main import create_app
from app.reports.deliveries.models import DeliveryStatus, ReportDelivery
from app.reports.jobs.models import JobStatus, ReportJob
from app.runtime.resources import Resources
from tests.helpers.api import api_client
from tests.helpers.deliveries import Mailbox, delivery_people
from tests.helpers.polling import wait_until
from tests.helpers.processes import kill_group, start_worker
from tests.helpers.tokens import TokenFactory

pytestmark = pytest.mark.soak
ROUNDS = 10


async def test_killed_workers_lose_no_delivery_and_copies_share_their_id(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox
) -> None:
    settings = delivery_resources.settings.model_copy(
        update={"delivery_lease_seconds": 8, "delivery_attempt_deadline_seconds": 3.0}
    )
    people = await delivery_people(auth)
    application = create_app(settings, resources=delivery_resources)
    rng = random.Random(13)
    async with application.router.lifespan_context(application), api_client(application) as c:
        for _ in range(ROUNDS):
            created = await c.post(
                "/api/v1/reports/jobs",
                json={
                    "reportType": "learner-progress",
                    "format": "csv",
                    "parameters": {"dateRange": {"preset": "last-7-days"}},
                    "notify": {"email": True},
                },
                headers=people.headers,
            )
            assert created.status_code == 202, created.text
            job_id = created.json()["id"]
            worker = start_worker(settings)

            async def committed(job_id: str = job_id) -> bool:
                job = await ReportJob.get(job_id)
                return job is not None and job.status == JobStatus.COMPLETED

            await wait_until(committed, 60, "the job's commit")
            # Between the commit and the send, or during the send.
            await asyncio.sleep(rng.uniform(0, 0.3))
            kill_group(worker, signal.SIGKILL)
            worker.wait(10)

    survivor = start_worker(settings)
    try:

        async def all_sent() -> bool:
            stored = await ReportDelivery.find_all().to_list()
            return len(stored) == ROUNDS and all(d.status == DeliveryStatus.SENT for d in stored)

        await wait_until(all_sent, 120, "every delivery sent", interval=0.5)
    finally:
        kill_group(survivor, signal.SIGTERM)
        survivor.wait(30)

    stored = await ReportDelivery.find_all().to_list()
    ids = {f"<{d.id}@" for d in stored}
    copies = Counter(m["Message-ID"] for m in smtp_server.messages())
    assert {mid.split("@")[0] + "@" for mid in copies} == ids  # none lost, none unknown
    assert all(n >= 1 for n in copies.values())
