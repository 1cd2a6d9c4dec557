"""A report file is not handed out past its `expiresAt`, whether or not the retention sweep
(every 5 minutes) has removed it yet: not by the download endpoint, not through a delivery
link, and a presigned S3 link never outlives it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from beanie import PydanticObjectId

from app.common.time import utcnow
from app.main import create_app
from app.reports.deliveries.links import issue_link_token
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryContent,
    DeliveryStatus,
    Recipient,
    ReportDelivery,
)
from app.reports.jobs.models import JobStatus, ReportJob
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.deliveries import completed_job
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
BODY = {
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
}


async def _link_to(resources: Resources, job: ReportJob) -> str:
    """A delivery of the job's file to one address, and its (unexpired) link's path."""
    assert job.result is not None
    delivery = ReportDelivery(
        job_id=job.id,
        channel=DeliveryChannel.EMAIL,
        recipient=Recipient(address="ann@example.org"),
        content=DeliveryContent(
            report_name="Learner progress",
            report_type=job.report_type,
            format=job.format,
            job_status=JobStatus.COMPLETED.value,
            file_name=job.result.file_name,
            content_type=job.result.content_type,
            size_bytes=job.result.size_bytes,
            storage_key=job.result.storage_key,
            file_expires_at=job.expires_at,
        ),
        idempotency_id=str(PydanticObjectId()),
        status=DeliveryStatus.SENT,
        next_attempt_at=utcnow(),
    )
    await delivery.insert()
    token = issue_link_token(
        resources.settings,
        delivery_id=str(delivery.id),
        recipient=delivery.recipient.key(),
        expires_at=utcnow() + timedelta(days=1),
    )
    return f"/api/v1/reports/deliveries/{token}"


async def test_a_file_past_its_expiry_is_410_before_the_sweep_has_run(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, run_worker: Any
) -> None:
    await f.department()
    headers = auth("admin")
    created = await client.post(JOBS, json=BODY, headers=headers)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    await run_worker()
    job = await ReportJob.get(job_id)
    assert job and job.status == JobStatus.COMPLETED and job.result
    download = f"{JOBS}/{job_id}/download"
    assert (await client.get(download, headers=headers)).status_code == 200
    link = await _link_to(resources, job)
    assert (await client.get(link)).status_code == 200

    # Its retention ends; the sweep has not come by: the job still reads completed, the file
    # is still in storage.
    await ReportJob.get_pymongo_collection().update_one(
        {"_id": job.id}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}}
    )
    await ReportDelivery.get_pymongo_collection().update_many(
        {"job_id": job.id}, {"$set": {"content.file_expires_at": utcnow() - timedelta(seconds=1)}}
    )
    refused = await client.get(download, headers=headers)
    assert refused.status_code == 410, refused.text
    assert refused.json()["code"] == "job-expired"
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await client.get(link)).status_code == 410
    assert await resources.storage.exists(job.result.storage_key)
    stored = await ReportJob.get(job_id)
    assert stored and stored.status == JobStatus.COMPLETED


async def test_a_presigned_link_ends_with_the_file(
    auth: TokenFactory, s3_resources: Resources
) -> None:
    job = await completed_job(s3_resources)
    job.expires_at = utcnow() + timedelta(seconds=40)  # the 300 s link would outlive it
    await job.insert()
    application = create_app(s3_resources.settings, resources=s3_resources)
    async with application.router.lifespan_context(application), api_client(application) as c:
        response = await c.get(f"{JOBS}/{job.id}/download", headers=auth("admin"))
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert 30 <= int(query["X-Amz-Expires"][0]) <= 40, query
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(response.headers["location"])).status_code == 200
