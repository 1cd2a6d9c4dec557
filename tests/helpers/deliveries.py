"""Helpers of the delivery tests: what the real servers received (a mailbox directory written
by the project's FileMailbox, the requests of an HTTP receiver), a completed job with its file
stored, and a record of every socket connect (to prove refused addresses are never reached).
The fixtures that start the servers are in `delivery_fixtures.py`."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from beanie import PydanticObjectId

from app.common.time import utcnow
from app.platform.models import Course, Department, Enrollment, User
from app.reports.deliveries.sender import send_due
from app.reports.jobs.models import JobResult, JobStatus, ReportJob, Requester
from app.runtime.resources import Resources
from scripts.mailbox import list_mail, read
from tests import factories as f
from tests.helpers.tokens import TokenFactory


class Mailbox:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port

    def messages(self) -> list[EmailMessage]:
        return [read(mail.path) for mail in list_mail(self.directory)]

    def clear(self) -> None:
        """Empties the mailbox (what a test received so far is read; the next part starts)."""
        for mail in list_mail(self.directory):
            mail.path.unlink()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers in order, then 200
    extra_headers: dict[str, str] = field(default_factory=dict)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def completed_job(
    resources: Resources, *, content: bytes = b"a,b\n1,2\n", rows: int = 1
) -> ReportJob:
    """A completed job (not inserted) whose file is really stored."""
    job_id = PydanticObjectId()
    key = f"reports/2026-11-30/{job_id}/a1/learner-progress.csv"

    async def chunks() -> AsyncIterator[bytes]:
        yield content

    stored = await resources.storage.write_stream(key, chunks(), "text/csv")
    return ReportJob(
        id=job_id,
        report_type="learner-progress",
        format="csv",
        requested_by=Requester(user_id="owner-1", name="Owner", email="owner@school.example"),
        schedule_id=PydanticObjectId(),
        status=JobStatus.COMPLETED,
        resolved_parameters={
            "timezone": "Europe/Berlin",
            "dateRange": {
                "preset": "last-month",
                "from": "2026-11-01",
                "to": "2026-11-30",
                "start": "2026-10-31T23:00:00Z",
                "end": "2026-11-30T23:00:00Z",
            },
        },
        result=JobResult(
            file_name="learner-progress.csv",
            content_type="text/csv; charset=utf-8",
            size_bytes=stored.size_bytes,
            row_count=rows,
            checksum_sha256=stored.checksum_sha256,
            storage_key=key,
        ),
        expires_at=NOW + timedelta(days=3),
    )


class ConnectionLog:
    """Every socket connect of this process while `active` (a Python audit hook: hooks cannot
    be removed, so it is installed once and switched on per test)."""

    def __init__(self) -> None:
        self.active = False
        self.addresses: list[Any] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and event == "socket.connect":
            self.addresses.append(args[1])


CONNECTIONS = ConnectionLog()


@dataclass
class People:
    """The owner of a schedule (an admin) and two platform recipients, with a learner whose
    progress the reports show."""

    owner: User
    ann: User  # an admin
    ben: User  # a manager
    headers: dict[str, str]  # the owner's


async def delivery_people(auth: TokenFactory) -> People:
    dept = await f.department("Finance", code="FIN")
    owner = await f.user("Olga Owner", dept=dept, roles=["admin"], email="olga@example.test")
    ann = await f.user("Ann Admin", dept=dept, roles=["admin"], email="ann@example.test")
    ben = await f.user("Ben Boss", dept=dept, roles=["manager"], email="ben@example.test")
    learner = await f.user("Lars Learner", dept=dept)
    await f.enrollment(learner, await f.course("FIN-1"), enrolled_at=utcnow() - timedelta(days=2))
    return People(owner, ann, ben, auth("admin", sub=str(owner.id), name="Olga Owner"))


def schedule_body(**extra: Any) -> dict[str, Any]:
    """A daily learner-progress CSV schedule (`extra` adds or overrides fields)."""
    return {
        "name": "Weekly progress",
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "last-7-days"}},
        "frequency": "daily",
        "timeOfDay": "05:00",
        "timezone": "UTC",
        **extra,
    }


async def send_planned(resources: Resources, rounds: int = 3) -> None:
    """What the outbox holds, sent (a few rounds: a failed attempt's retry is not due yet)."""
    for _ in range(rounds):
        await send_due(resources, worker_id="test-sender")


async def run_now_and_send(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    schedule_id: str,
    run_worker: Callable[..., Any],
    resources: Resources,
) -> None:
    """A schedule's run-now, its job(s) run by a worker, then what they planned sent."""
    run = await client.post(f"/api/v1/reports/schedules/{schedule_id}/run-now", headers=headers)
    assert run.status_code == 202, run.text
    await run_worker()
    await send_planned(resources)


async def completed_run(
    api: httpx.AsyncClient,
    schedule_id: str,
    headers: dict[str, str],
    run_worker: Callable[..., Any],
    resources: Resources,
) -> dict[str, Any]:
    """A schedule's run-now run by a worker and its deliveries sent once: the run as
    `GET /schedules/{id}/runs` shows it (checked completed)."""
    run = await api.post(f"/api/v1/reports/schedules/{schedule_id}/run-now", headers=headers)
    assert run.status_code == 202, run.text
    await run_worker()
    await send_planned(resources, rounds=1)
    runs = await api.get(f"/api/v1/reports/schedules/{schedule_id}/runs", headers=headers)
    latest: dict[str, Any] = runs.json()["items"][0]
    assert latest["id"] == run.json()["id"] and latest["status"] == "completed", latest
    return latest


async def mandatory_enrollments(names: Sequence[str], *, due_in: timedelta) -> list[Enrollment]:
    """One enrollment per learner name in the mandatory course SAF-1 of department Safety (both
    made on first use), enrolled 30 days ago, due `due_in` from now, none completed yet."""
    dept = await Department.find_one({"code": "SAF"}) or await f.department("Safety", code="SAF")
    course = await Course.find_one({"code": "SAF-1"}) or await f.course("SAF-1", mandatory=True)
    now = utcnow()
    return [
        await f.enrollment(
            await f.user(name, dept=dept),
            course,
            enrolled_at=now - timedelta(days=30),
            due_at=now + due_in,
        )
        for name in names
    ]


async def set_compliance_rate(enrollments: Sequence[Enrollment], compliant: int) -> None:
    """The first `compliant` of them completed on time, the others not completed."""
    now = utcnow()
    for n, e in enumerate(enrollments):
        done = n < compliant
        await e.set(
            {
                "status": "completed" if done else "in-progress",
                "completed_at": now - timedelta(days=10) if done else None,
            }
        )
