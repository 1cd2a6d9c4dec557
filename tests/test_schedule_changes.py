"""Change reports on real servers: a compliance schedule whose data changes between runs (one
enrollment completed, one made overdue, one learner enrolled) names exactly those rows with
their before → after in the list of changes, the e-mail and the webhook; the first run is the
baseline; an unchanged run follows the `unchanged` policy; a refused commit does not move the
baseline; a type without a row key is a 422 naming the field; each scope of an audience
`recipient` schedule keeps its own baseline."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import httpx
import openpyxl
from beanie import PydanticObjectId
from prometheus_client import REGISTRY
from pypdf import PdfReader

from app.common.time import utcnow
from app.main import create_app
from app.platform.models import Department
from app.reports.deliveries import outbox
from app.reports.deliveries.models import ReportDelivery
from app.reports.deliveries.sender import send_due
from app.reports.jobs import repository as jobs
from app.reports.jobs.evaluation import ChangeOutcome
from app.reports.jobs.models import ReportJob
from app.reports.schedules import repository as schedules
from app.reports.schedules.changes.gate import ChangeGate
from app.reports.schedules.models import ReportSchedule
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.deliveries import (
    Mailbox,
    Receiver,
    completed_run,
    delivery_people,
    mandatory_enrollments,
)
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"
DUE = timedelta(days=14)  # the learners' due date, from now


def _body(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Mandatory training",
        "reportType": "compliance-status",
        "format": "csv",
        "parameters": {},
        "frequency": "daily",
        "timeOfDay": "05:00",
        "timezone": "UTC",
        "changes": changes,
    }


async def _changes_file(res: Resources, job_id: str) -> list[list[str]]:
    job = await ReportJob.get(PydanticObjectId(job_id))
    assert job is not None and job.evaluation is not None and job.evaluation.changes is not None
    key = job.evaluation.changes.file_key
    assert key is not None
    data = b"".join([chunk async for chunk in await res.storage.open_stream(key)])
    return list(csv.reader(io.StringIO(data.decode())))


def _counted(found: str, moved: str) -> float:
    value = REGISTRY.get_sample_value(
        "report_change_reports_total",
        {"report_type": "compliance-status", "found": found, "moved": moved},
    )
    return value or 0.0


def _text(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


async def test_the_change_report_names_exactly_the_rows_that_changed(
    delivery_resources: Resources,
    auth: TokenFactory,
    smtp_server: Mailbox,
    http_receiver: Receiver,
    run_worker: Any,
) -> None:
    people = await delivery_people(auth)
    ada, bob, _cy = await mandatory_enrollments(["Ada Archer", "Bob Baker", "Cy Cole"], due_in=DUE)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={
                **_body(mode="both", unchanged="notice"),
                "recipients": [str(people.ann.id)],
                "webhooks": [{"url": http_receiver.url()}],
            },
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["changes"] == {"mode": "both", "unchanged": "notice"}
        schedule_id = created.json()["id"]

        first = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        said = first["evaluation"]["changes"]
        assert said["firstRun"] is True and said["added"] == 3 and said["baselineMoved"] is True
        assert said["summary"].startswith("First run: 3 enrollments form the baseline")
        [mail] = smtp_server.messages()
        assert mail["Subject"] == "Changes: Mandatory training"
        assert "First run: 3 enrollments form the baseline" in _text(mail)

        # Ada completes, Bob's due date passes, Dee enrols; Cy stays as he was.
        now = utcnow()
        await ada.set({"status": "completed", "completed_at": now - timedelta(days=1)})
        await bob.set({"due_at": now - timedelta(days=2)})
        [dee] = await mandatory_enrollments(["Dee Dunn"], due_in=DUE)

        second = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        said = second["evaluation"]["changes"]
        assert (said["added"], said["left"], said["changed"], said["unchanged"]) == (1, 0, 2, 1)
        assert said["transitions"] == {"newly-overdue": 1, "completed": 1}
        assert said["summary"] == "1 newly overdue, 1 completed, 1 enrolled"
        assert said["since"] is not None and said["firstRun"] is False
        rows = await _changes_file(delivery_resources, second["id"])
        assert rows[0] == ["change", "enrollment", "field", "before", "after"]
        named = {(r[0], r[1].split(" · ")[0], r[2]) for r in rows[1:]}
        assert named == {
            ("added", "Dee Dunn", ""),
            ("changed", "Ada Archer", "Status"),
            ("changed", "Ada Archer", "Compliance"),
            ("changed", "Bob Baker", "Compliance"),
        }
        ada_status = next(r for r in rows if r[1].startswith("Ada") and r[2] == "Status")
        assert ada_status[3:] == ["enrolled", "completed"]
        bob_state = next(r for r in rows if r[1].startswith("Bob"))
        assert bob_state[4] == "overdue" and bob_state[3] != "overdue"

        mail = smtp_server.messages()[-1]
        text = _text(mail)
        assert "1 newly overdue, 1 completed, 1 enrolled" in text
        assert "Ada Archer · SAF-1: Status enrolled → completed" in text
        assert "Dee Dunn · SAF-1: enrolled" in text
        assert "Cy Cole" not in text.split("Changes since")[1].split("\n\n")[0]
        hook = json.loads(http_receiver.requests[-1].body)["data"]["changes"]
        assert hook["counts"] == {"added": 1, "left": 0, "changed": 2, "unchanged": 1}
        assert hook["transitions"] == {"newly-overdue": 1, "completed": 1}
        assert any(line.startswith("Bob Baker · SAF-1: Compliance") for line in hook["lines"])

        # Nothing changes: a short "no changes" notice, no file.
        third = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        assert third["evaluation"]["changes"]["summary"] == (
            "Nothing changed since the last delivered run."
        )
        notice = smtp_server.messages()[-1]
        assert notice["Subject"] == "Mandatory training: no changes"
        assert not list(notice.iter_attachments())
        assert json.loads(http_receiver.requests[-1].body)["type"] == "report.notice"

        # Dee leaves (her enrollment is removed): the next run says so.
        await dee.delete()
        fourth = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        said = fourth["evaluation"]["changes"]
        assert (said["added"], said["left"], said["changed"]) == (0, 1, 0)
        assert said["lines"] == ["Dee Dunn · SAF-1: no longer listed"]
        shown = (await api.get(f"{SCHEDULES}/{schedule_id}", headers=people.headers)).json()
        [baseline] = shown["changeBaselines"]
        assert baseline["jobId"] == fourth["id"] and baseline["rows"] == 3
    assert len(smtp_server.messages()) == 4


async def test_unchanged_skip_sends_nothing_and_changes_mode_sends_the_list(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    (ada,) = await mandatory_enrollments(["Ada Archer"], due_in=DUE)
    skipped_before = _counted("unchanged", "no")
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={**_body(mode="changes", unchanged="skip"), "recipients": [str(people.ann.id)]},
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        first = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        assert first["evaluation"]["changes"]["firstRun"] is True
        # The first message carries the report itself: the baseline the next ones compare to.
        [baseline_file] = list(smtp_server.messages()[0].iter_attachments())
        assert str(baseline_file.get_filename()).startswith("compliance-status-")
        second = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        assert second["evaluation"]["changes"]["baselineMoved"] is False
        assert second["deliveries"] == []
        assert len(smtp_server.messages()) == 1  # the unchanged run sent nothing
        assert _counted("unchanged", "no") - skipped_before == 1  # counted in /metrics
        await ada.set({"status": "completed", "completed_at": utcnow()})
        third = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        assert third["evaluation"]["changes"]["since"] is not None
        mail = smtp_server.messages()[-1]
        [attachment] = list(mail.iter_attachments())
        assert str(attachment.get_filename()).startswith("changes-")
        payload = attachment.get_payload(decode=True)
        assert isinstance(payload, bytes)
        listed = payload.decode("utf-8")
        assert "changed,Ada Archer · SAF-1,Status,enrolled,completed" in listed
        # The baseline is the first run's until the third was delivered.
        shown = (await api.get(f"{SCHEDULES}/{schedule_id}", headers=people.headers)).json()
        assert shown["changeBaselines"][0]["jobId"] == third["id"]


async def test_a_refused_commit_does_not_move_the_baseline(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    await mandatory_enrollments(["Ada Archer", "Bob Baker"], due_in=DUE)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={**_body(), "recipients": [str(people.ann.id)]},
            headers=people.headers,
        )
        schedule_id = created.json()["id"]
        first = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
    job = await ReportJob.get(PydanticObjectId(first["id"]))
    assert job is not None and job.result is not None
    before = await ReportSchedule.get(PydanticObjectId(schedule_id))
    assert before is not None
    [(scope, baseline)] = before.change_baselines.items()
    # The same job committed again by a worker whose lease is gone (as after a crash or a
    # cancel): nothing is decided, the baseline stays where the delivered run put it.
    outcome = ChangeOutcome(
        added=5, baseline_job_id=baseline.job_id, baseline_key="baselines/elsewhere.jsonl.gz"
    )
    gate = ChangeGate(job, outcome, None, delivery_resources.storage)
    again = await outbox.commit_completed(
        job,
        job.result,
        utcnow() + timedelta(days=1),
        delivery_resources.settings,
        lambda session: jobs.finish_held(job.id, "stale", {}, session=session),  # type: ignore[arg-type]
        delivers=schedules.delivers,
        choose=gate.choose,
    )
    assert again is False and outcome.baseline_moved is False
    after = await ReportSchedule.get(PydanticObjectId(schedule_id))
    assert after is not None and after.change_baselines[scope].job_id == first["id"]
    assert await delivery_resources.storage.exists(baseline.key)


async def test_a_type_without_a_row_key_is_a_422_naming_the_field(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    people = await delivery_people(auth)
    body = {**_body(), "reportType": "assessment-results", "parameters": {}}
    body["changes"] = {"mode": "sideways"}
    answer = await client.post(SCHEDULES, json=body, headers=people.headers)
    assert answer.status_code == 422
    fields = {e["field"] for e in answer.json()["errors"]}
    assert "body.changes.mode" in fields
    body["changes"] = {"mode": "changes"}
    answer = await client.post(SCHEDULES, json=body, headers=people.headers)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error["field"] == "body.changes" and "assessment-results" in error["message"]


async def test_each_recipient_scope_keeps_its_own_baseline(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    """Audience `recipient`: Ann (admin) sees the Safety and Finance learners, Ben (a Finance
    manager) the Finance one only; a Safety learner completing changes Ann's report only."""
    people = await delivery_people(auth)
    ada, _bob = await mandatory_enrollments(["Ada Archer", "Bob Baker"], due_in=DUE)
    finance = await Department.find_one({"code": "FIN"})
    assert finance is not None
    fay = await f.user("Fay Finch", dept=finance)
    await f.enrollment(
        fay,
        await f.course("FIN-M", mandatory=True),
        enrolled_at=utcnow() - timedelta(days=3),
        due_at=utcnow() + timedelta(days=10),
    )
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={
                **_body(unchanged="notice"),
                "audience": "recipient",
                "recipients": [str(people.ann.id), str(people.ben.id)],
            },
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]

        async def run_all() -> list[dict[str, Any]]:
            run = await api.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=people.headers)
            assert run.status_code == 202, run.text
            await run_worker()
            await send_due(delivery_resources, worker_id="w1")
            listed = await api.get(f"{SCHEDULES}/{schedule_id}/runs", headers=people.headers)
            return [r["evaluation"]["changes"] for r in listed.json()["items"][:2]]

        first = await run_all()
        assert sorted(c["added"] for c in first) == [1, 3] and all(c["firstRun"] for c in first)
        shown = (await api.get(f"{SCHEDULES}/{schedule_id}", headers=people.headers)).json()
        assert sorted(b["rows"] for b in shown["changeBaselines"]) == [1, 3]

        await ada.set({"status": "completed", "completed_at": utcnow()})
        second = await run_all()
        assert sorted(c["summary"] for c in second) == [
            "1 completed",
            "Nothing changed since the last delivered run.",
        ]
    sent = [(m["To"], m["Subject"]) for m in smtp_server.messages()[2:]]
    assert sorted(sent) == [
        ("ann@example.test", "Changes: Mandatory training"),
        ("ben@example.test", "Mandatory training: no changes"),
    ]


async def test_evaluate_reports_the_change_counts_without_moving_the_baseline(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    (ada,) = await mandatory_enrollments(["Ada Archer"], due_in=DUE)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={**_body(unchanged="skip"), "recipients": [str(people.ann.id)]},
            headers=people.headers,
        )
        schedule_id = created.json()["id"]
        url = f"{SCHEDULES}/{schedule_id}/evaluate"
        before = (await api.post(url, headers=people.headers)).json()
        assert before["changes"]["firstRun"] is True and before["changes"]["added"] == 1
        first = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        same = (await api.post(url, headers=people.headers)).json()
        assert same["changes"]["changed"] == 0 and same["wouldSend"]["kind"] == "none"
        await ada.set({"status": "completed", "completed_at": utcnow()})
        answer = await api.post(url, headers=people.headers)
        assert answer.status_code == 200, answer.text
        said = answer.json()
        assert said["changes"]["summary"] == "1 completed"
        assert said["changes"]["baselineMoved"] is False
        assert said["wouldSend"] == {
            "kind": "changes",
            "subject": "Changes: Mandatory training",
            "recipients": ["ann@example.test"],
            "webhooks": 0,
        }
        shown = (await api.get(f"{SCHEDULES}/{schedule_id}", headers=people.headers)).json()
        assert shown["changeBaselines"][0]["jobId"] == first["id"]
    assert len(smtp_server.messages()) == 1  # the first run only; evaluate sent nothing


async def _report_file(res: Resources, job_id: str) -> bytes:
    job = await ReportJob.get(PydanticObjectId(job_id))
    assert job is not None and job.result is not None
    chunks = [chunk async for chunk in await res.storage.open_stream(job.result.storage_key)]
    return b"".join(chunks)


async def test_excel_and_pdf_files_carry_a_changes_since_section(
    delivery_resources: Resources, auth: TokenFactory, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    ada, _bob = await mandatory_enrollments(["Ada Archer", "Bob Baker"], due_in=DUE)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        ids = []
        for fmt in ("xlsx", "pdf"):
            # The Excel file in German: its sheet's words and coded values too.
            locale = "de" if fmt == "xlsx" else "en"
            created = await api.post(
                SCHEDULES,
                json={
                    **_body(),
                    "format": fmt,
                    "locale": locale,
                    "recipients": [str(people.ann.id)],
                },
                headers=people.headers,
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        for schedule_id in ids:
            await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
        await ada.set({"status": "completed", "completed_at": utcnow()})
        xlsx_run, pdf_run = [
            await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
            for schedule_id in ids
        ]
    book = openpyxl.load_workbook(
        io.BytesIO(await _report_file(delivery_resources, xlsx_run["id"]))
    )
    assert "Changes" in book.sheetnames
    sheet = book["Changes"]
    assert str(sheet["A1"].value).startswith("Änderungen seit ")
    assert [c.value for c in sheet[4]] == ["Änderung", "Zeile", "Feld", "Vorher", "Nachher"]
    listed = [tuple(c.value for c in row) for row in sheet.iter_rows(min_row=5)]
    assert ("Geändert", "Ada Archer · SAF-1", "Status", "Eingeschrieben", "Abgeschlossen") in listed
    assert not any(row[1] and str(row[1]).startswith("Bob") for row in listed)
    pdf = PdfReader(io.BytesIO(await _report_file(delivery_resources, pdf_run["id"])))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "changes since" in text.lower() and "1 completed" in text  # headings: capitals
    assert "Ada Archer · SAF-1" in text and "Changed" in text


async def test_metadata_lists_what_a_change_report_compares(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    people = await delivery_people(auth)
    base = "/api/v1/reports/metadata/report-types"
    progress = (await client.get(f"{base}/learner-progress", headers=people.headers)).json()
    report = progress["changeReport"]
    assert report["key"] == ["learnerEmail", "courseCode"]
    assert {"key": "progressPercent", "label": "Progress", "banded": True} in report["fields"]
    assert report["transitions"] == ["newly overdue", "completed"]
    results = (await client.get(f"{base}/assessment-results", headers=people.headers)).json()
    assert results["changeReport"] is None


async def test_a_learner_progress_schedule_says_who_is_newly_overdue(
    delivery_resources: Resources,
    auth: TokenFactory,
    smtp_server: Mailbox,
    http_receiver: Receiver,
    run_worker: Any,
) -> None:
    people = await delivery_people(auth)
    dept = await Department.find_one({"code": "FIN"})
    assert dept is not None
    course = await f.course("FIN-2")
    now = utcnow()
    enrolled = []
    for name in ("Gus Grant", "Hal Hart", "Ivy Irwin"):
        learner = await f.user(name, dept=dept)
        enrolled.append(
            await f.enrollment(
                learner,
                course,
                enrolled_at=now - timedelta(days=1),
                due_at=now + timedelta(days=5),
                status="in-progress",
                progress_percent=40.0,
            )
        )
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={
                "name": "Weekly progress",
                "reportType": "learner-progress",
                "format": "csv",
                "parameters": {"dateRange": {"preset": "last-7-days"}},
                "frequency": "daily",
                "timeOfDay": "05:00",
                "timezone": "UTC",
                "changes": {},
                "recipients": [str(people.ann.id)],
                "webhooks": [{"url": http_receiver.url()}],
            },
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
        gus, hal, ivy = enrolled
        await gus.set({"due_at": now - timedelta(hours=1)})  # overdue now
        await hal.set({"status": "completed", "progress_percent": 100.0, "completed_at": now})
        await ivy.set({"progress_percent": 45.0})  # the same band (1-49): no news
        newcomer = await f.user("Jo Jones", dept=dept)
        await f.enrollment(newcomer, course, enrolled_at=now - timedelta(hours=2))
        second = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
    said = second["evaluation"]["changes"]
    assert said["summary"] == "1 newly overdue, 1 completed, 1 enrolled"
    assert (said["added"], said["changed"], said["left"]) == (1, 2, 0)
    lines = set(said["lines"])
    assert "Gus Grant · FIN-2: Overdue no → yes" in lines
    assert "Hal Hart · FIN-2: Status in-progress → completed; Progress 1-49 → 100" in lines
    assert "Jo Jones · FIN-2: enrolled" in lines
    assert not any(line.startswith("Ivy Irwin") for line in lines)
    text = _text(smtp_server.messages()[-1])
    assert "1 newly overdue, 1 completed, 1 enrolled" in text
    hook = json.loads(http_receiver.requests[-1].body)["data"]["changes"]
    assert hook["summary"] == "1 newly overdue, 1 completed, 1 enrolled"


async def test_a_commit_that_dies_after_comparing_moves_nothing_and_the_run_sends_once(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    """The change decision, the baseline's move and the deliveries are one transaction: one
    aborted after the gate wrote everything leaves the baseline and the run as they were; the
    run that follows sends once and moves it."""
    people = await delivery_people(auth)
    (ada,) = await mandatory_enrollments(["Ada Archer"], due_in=DUE)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES, json={**_body(), "recipients": [str(people.ann.id)]}, headers=people.headers
        )
        schedule_id = created.json()["id"]
        first = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        await ada.set({"status": "completed", "completed_at": utcnow()})
        run = await api.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=people.headers)
        job = await ReportJob.get(PydanticObjectId(run.json()["id"]))
        assert job is not None
        outcome = ChangeOutcome(
            changed=1, baseline_job_id=first["id"], baseline_key="baselines/x.jsonl.gz"
        )
        gate = ChangeGate(job, outcome, None, delivery_resources.storage)
        client = ReportJob.get_pymongo_collection().database.client

        class Crash(Exception):
            pass

        # A message as the run plans it (the first run's, as a stand-in).
        sent = await ReportDelivery.find_one({"job_id": PydanticObjectId(first["id"])})
        assert sent is not None

        async def dies(session: Any) -> None:
            planned = await gate.choose([sent], session)
            assert len(planned) == 1 and outcome.baseline_moved is True
            raise Crash  # the worker dies before the commit

        async with client.start_session() as session:
            try:
                await session.with_transaction(dies)
            except Crash:
                pass
        schedule = await ReportSchedule.get(PydanticObjectId(schedule_id))
        assert schedule is not None
        [baseline] = schedule.change_baselines.values()
        assert baseline.job_id == first["id"]
        stored = await ReportJob.get(job.id)
        assert stored is not None and stored.evaluation is None

        await run_worker()
        assert await send_due(delivery_resources, worker_id="w1") == 1
        done = await ReportJob.get(job.id)
        assert done is not None and done.evaluation is not None
        assert done.evaluation.changes is not None
        assert done.evaluation.changes.summary == "1 completed"
        assert done.evaluation.changes.baseline_moved is True
    subjects = [m["Subject"] for m in smtp_server.messages()]
    assert subjects == ["Changes: Mandatory training", "Changes: Mandatory training"]


async def test_a_test_send_says_what_changed_and_never_moves_the_baseline(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    (ada,) = await mandatory_enrollments(["Ada Archer"], due_in=DUE)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={**_body(unchanged="skip"), "recipients": [str(people.ann.id)]},
            headers=people.headers,
        )
        schedule_id = created.json()["id"]
        first = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        # Nothing changed: the test still tells so (a test never skips silently).
        tested = await api.post(f"{SCHEDULES}/{schedule_id}/test", headers=people.headers)
        assert tested.status_code == 202, tested.text
        await run_worker()
        await send_due(delivery_resources, worker_id="w1")
        assert smtp_server.messages()[-1]["Subject"] == "[Test] Mandatory training: no changes"
        await ada.set({"status": "completed", "completed_at": utcnow()})
        await api.post(f"{SCHEDULES}/{schedule_id}/test", headers=people.headers)
        await run_worker()
        await send_due(delivery_resources, worker_id="w1")
        test_mail = smtp_server.messages()[-1]
        assert test_mail["To"] == "olga@example.test"
        assert test_mail["Subject"] == "Changes: [Test] Mandatory training"
        assert "1 completed" in _text(test_mail)
        shown = (await api.get(f"{SCHEDULES}/{schedule_id}", headers=people.headers)).json()
        assert shown["changeBaselines"][0]["jobId"] == first["id"]
        real = await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
        assert real["evaluation"]["changes"]["summary"] == "1 completed"
        assert real["evaluation"]["changes"]["baselineMoved"] is True
