"""Downloads from local storage, as a client resuming or compressing one sees them: `Range`
(206 with exactly those bytes, 416 past the end), `If-Range` (a changed file comes whole),
`Accept-Encoding: gzip` for CSV and JSON Lines (decoding to the identical file, never combined
with a range), on a job's download and on a delivery link; and a CSV over the e-mail attachment
limit arriving zipped in the local SMTP mailbox."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import timedelta
from email.utils import format_datetime

import httpx
from beanie import PydanticObjectId

from app.common.time import utcnow
from app.reports.deliveries import repository
from app.reports.deliveries.links import issue_link_token
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryConfig,
    DeliveryContent,
    DeliveryMode,
    DeliveryStatus,
    Recipient,
    ReportDelivery,
)
from app.reports.deliveries.planning import plan_deliveries
from app.reports.deliveries.sender import send_due
from app.reports.jobs.models import JobStatus, ReportJob
from app.runtime.resources import Resources
from tests.helpers.deliveries import Mailbox, completed_job
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
IDENTITY = {"Accept-Encoding": "identity"}


def _csv(rows: int) -> bytes:
    """A CSV as a report writes one: a header, then rows that repeat names and dates."""
    lines = ["learnerName,department,course,status,enrolledAt,progressPercent"]
    lines += [
        f"Learner {i:05d},Finance,FIN-{i % 7},in-progress,2026-11-{1 + i % 28:02d},{i % 101}"
        for i in range(rows)
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


async def _stored_job(resources: Resources, content: bytes) -> ReportJob:
    job = await completed_job(resources, content=content)
    job.expires_at = utcnow() + timedelta(days=1)
    job.finished_at = utcnow() - timedelta(minutes=5)
    await job.insert()
    return job


async def _link_to(resources: Resources, job: ReportJob) -> str:
    """A sent delivery of the job's file to one address, and its link's path."""
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
            checksum_sha256=job.result.checksum_sha256,
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


async def test_a_range_of_a_local_download_is_exactly_those_bytes(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    data = _csv(500)
    job = await _stored_job(resources, data)
    url, size = f"{JOBS}/{job.id}/download", len(data)
    admin = auth("admin")

    whole = await client.get(url, headers={**admin, **IDENTITY})
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-length"] == str(size)
    etag = whole.headers["etag"]
    assert etag == f'"{job.result.checksum_sha256}"'  # type: ignore[union-attr]
    assert "content-encoding" not in whole.headers

    part = await client.get(url, headers={**admin, "Range": "bytes=1000-1999"})
    assert part.status_code == 206, part.text
    assert part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{size}"
    assert part.headers["content-length"] == "1000"
    assert part.headers["content-type"].startswith("text/csv")
    assert "content-encoding" not in part.headers  # a range is identity bytes, gzip or not

    suffix = await client.get(url, headers={**admin, "Range": "bytes=-500"})
    assert suffix.status_code == 206 and suffix.content == data[-500:]
    assert suffix.headers["content-range"] == f"bytes {size - 500}-{size - 1}/{size}"
    rest = await client.get(url, headers={**admin, "Range": f"bytes={size - 10}-"})
    assert rest.status_code == 206 and rest.content == data[-10:]
    clipped = await client.get(url, headers={**admin, "Range": f"bytes=10-{size * 2}"})
    assert clipped.status_code == 206 and clipped.content == data[10:]

    past = await client.get(url, headers={**admin, "Range": f"bytes={size}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{size}"
    assert past.json()["code"] == "range-not-satisfiable"

    # Resuming the same file: the range. A file that changed since (another ETag, an older
    # date): the whole file, so a client never splices two files together.
    same = await client.get(url, headers={**admin, "Range": "bytes=100-199", "If-Range": etag})
    assert same.status_code == 206 and same.content == data[100:200]
    modified = whole.headers["last-modified"]
    by_date = await client.get(
        url, headers={**admin, **IDENTITY, "Range": "bytes=100-199", "If-Range": modified}
    )
    assert by_date.status_code == 206 and by_date.content == data[100:200]
    for stale in ('"0123abcd"', f"W/{etag}", format_datetime(utcnow() - timedelta(days=3), True)):
        changed = await client.get(
            url, headers={**admin, **IDENTITY, "Range": "bytes=100-199", "If-Range": stale}
        )
        assert changed.status_code == 200 and changed.content == data, stale

    # Several ranges are not served as a multipart answer: the whole file.
    several = await client.get(url, headers={**admin, **IDENTITY, "Range": "bytes=0-9,20-29"})
    assert several.status_code == 200 and several.content == data


async def test_gzip_decodes_to_the_identical_csv_on_both_downloads(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    data = _csv(20_000)  # about 1.3 MB: more than one storage read chunk
    job = await _stored_job(resources, data)
    admin = auth("admin")
    for url, headers in (
        (f"{JOBS}/{job.id}/download", admin),
        (await _link_to(resources, job), {}),
    ):
        async with client.stream(
            "GET", url, headers={**headers, "Accept-Encoding": "gzip"}
        ) as answer:
            assert answer.status_code == 200
            packed = b"".join([chunk async for chunk in answer.aiter_raw()])
        assert answer.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in answer.headers["vary"]
        assert "content-length" not in answer.headers  # streamed as it is compressed
        assert gzip.decompress(packed) == data
        assert len(packed) < len(data) / 4
        plain = await client.get(url, headers={**headers, **IDENTITY})
        assert plain.content == data and "content-encoding" not in plain.headers
        ranged = await client.get(
            url, headers={**headers, "Accept-Encoding": "gzip", "Range": "bytes=1000-1999"}
        )
        assert ranged.status_code == 206 and ranged.content == data[1000:2000]
        assert "content-encoding" not in ranged.headers


async def test_a_pdf_is_never_compressed(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    job = await _stored_job(resources, b"%PDF-1.7 not really a PDF" * 100)
    job.format = "pdf"
    await job.save()
    answer = await client.get(
        f"{JOBS}/{job.id}/download", headers={**auth("admin"), "Accept-Encoding": "gzip"}
    )
    assert answer.status_code == 200 and "content-encoding" not in answer.headers
    assert "Accept-Encoding" not in answer.headers.get("vary", "")


async def _mail_csv(resources: Resources, content: bytes) -> None:
    job = await completed_job(resources, content=content)
    job.expires_at = utcnow() + timedelta(days=1)
    config = DeliveryConfig(
        mode=DeliveryMode.ATTACH, recipients=[Recipient(address="bob@partner.example")]
    )
    planned = plan_deliveries(
        job, config, [], resources.settings, report_name="Progress", figures=[], now=utcnow()
    )
    await repository.insert_many(planned)
    assert await send_due(resources, worker_id="w1", now=utcnow()) == 1


async def test_a_csv_over_the_attachment_limit_arrives_zipped(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    data = _csv(3_000)  # about 200 KB; its zip is about a tenth of it
    res.settings.delivery_attachment_max_mb = 100 * 1024 / 1_048_576  # 100 KB
    await _mail_csv(res, data)
    [message] = smtp_server.messages()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "learner-progress.csv.zip"
    assert attachment.get_content_type() == "application/zip"
    packed = attachment.get_payload(decode=True)
    assert isinstance(packed, bytes) and len(packed) <= 100 * 1024
    with zipfile.ZipFile(io.BytesIO(packed)) as archive:
        assert archive.namelist() == ["learner-progress.csv"]
        assert archive.read("learner-progress.csv") == data
    text = str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert "learner-progress.csv.zip is attached" in text
    assert "Download:" not in text  # attach mode, and it was attached


async def test_a_csv_whose_zip_is_still_too_large_goes_as_a_link(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    res.settings.delivery_attachment_max_mb = 2 * 1024 / 1_048_576  # 2 KB
    await _mail_csv(res, _csv(3_000))  # its zip is about 20 KB
    [message] = smtp_server.messages()
    assert list(message.iter_attachments()) == []
    text = str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert "too large to attach" in text and "Download: https://" in text


async def test_s3_storage_streams_a_byte_range(s3_resources: Resources) -> None:
    """Delivery links stream from storage on S3 too: a range there is a ranged GetObject."""
    data = _csv(500)
    job = await _stored_job(s3_resources, data)
    storage = s3_resources.storage
    key = job.result.storage_key  # type: ignore[union-attr]
    part = b"".join([c async for c in await storage.open_stream(key, 1000, 2000)])
    assert part == data[1000:2000]
    tail = b"".join([c async for c in await storage.open_stream(key, len(data) - 7)])
    assert tail == data[-7:]
    assert [c async for c in await storage.open_stream(key, len(data))] == []
