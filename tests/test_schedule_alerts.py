"""Threshold alerts on a schedule, on real servers: a compliance-rate alert over runs whose
data changes (above, below, below, above, below) mails on the 2nd and 5th run only and "back
to normal" on the 4th; a value hovering inside the recovery margin does not refire; an unknown
metric is a 422 naming it; evaluate sends nothing and moves no state; a commit that dies after
evaluating leaves nothing behind, and the run sends once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from beanie import PydanticObjectId
from prometheus_client import REGISTRY

from app.audit import AuditEvent
from app.common.time import utcnow
from app.main import create_app
from app.reports.deliveries import outbox
from app.reports.deliveries.models import ReportDelivery
from app.reports.deliveries.sender import send_due
from app.reports.jobs import repository as jobs
from app.reports.jobs.models import ReportJob
from app.reports.rendering.base import ColumnType, Figure
from app.reports.schedules import repository as schedules
from app.reports.schedules.alerts.gate import AlertGate
from app.reports.schedules.models import ReportSchedule
from app.runtime.resources import Resources
from tests.helpers.api import api_client
from tests.helpers.deliveries import (
    Mailbox,
    Receiver,
    completed_run,
    delivery_people,
    mandatory_enrollments,
    set_compliance_rate,
)
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"
WEEK = timedelta(days=7)  # the learners were due a week ago


def _body(**alert: Any) -> dict[str, Any]:
    return {
        "name": "Mandatory training",
        "reportType": "compliance-status",
        "format": "csv",
        "parameters": {},
        "frequency": "daily",
        "timeOfDay": "05:00",
        "timezone": "UTC",
        "alert": {"conditions": [{"metric": "complianceRate", "op": "<", "value": 80}], **alert},
    }


def _counter(report_type: str, state: str) -> float:
    value = REGISTRY.get_sample_value(
        "report_alert_evaluations_total", {"report_type": report_type, "state": state}
    )
    return value or 0.0


async def test_a_compliance_alert_fires_when_the_rate_falls_and_again_only_after_recovering(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    enrollments = await mandatory_enrollments([f"Learner {n}" for n in range(10)], due_in=-WEEK)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    fired_before = _counter("compliance-status", "fired")
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={**_body(notifyRecovery=True), "recipients": [str(people.ann.id)]},
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        assert created.json()["alert"]["conditions"][0] == {
            "metric": "complianceRate",
            "op": "<",
            "value": 80.0,
            "change": None,
            "by": None,
            "relative": False,
            "versus": None,
        }
        subjects: list[list[str]] = []
        states = []
        for compliant in (9, 5, 6, 9, 4):  # 90 %, 50 %, 60 %, 90 %, 40 %
            await set_compliance_rate(enrollments, compliant)
            before = len(smtp_server.messages())
            run = await completed_run(
                api, schedule_id, people.headers, run_worker, delivery_resources
            )
            alert = run["evaluation"]["alert"]
            states.append(alert["state"])
            assert alert["conditions"][0]["measured"] == compliant * 10.0
            subjects.append([m["Subject"] for m in smtp_server.messages()[before:]])
        assert states == ["not-met", "fired", "still-firing", "recovered", "fired"]
        assert subjects == [
            [],
            ["Alert: Mandatory training"],
            [],
            ["Back to normal: Mandatory training"],
            ["Alert: Mandatory training"],
        ]
        fired = smtp_server.messages()[0]
        text = str(fired.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
        assert "Compliance rate: 50 % < 80 %: met" in text

        shown = (await api.get(f"{SCHEDULES}/{schedule_id}", headers=people.headers)).json()
        [scope] = shown["alertState"]
        assert scope["state"] == "fired" and scope["firing"] is True
        assert scope["values"]["complianceRate"] == 40.0
    audits = await AuditEvent.find({"action": "schedule.alert-fired"}).to_list()
    assert len(audits) == 2 and all(a.object_id == schedule_id for a in audits)
    assert _counter("compliance-status", "fired") - fired_before == 2


async def test_a_rate_hovering_inside_the_recovery_margin_does_not_refire(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    enrollments = await mandatory_enrollments([f"Learner {n}" for n in range(10)], due_in=-WEEK)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={**_body(recoveryMargin=5), "recipients": [str(people.ann.id)]},
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        states = []
        # 70 % fires; 80 % and 70 % and 80 % stay inside the margin (recovery at ≥ 85 %);
        # 90 % recovers (no message: notifyRecovery is off).
        for compliant in (7, 8, 7, 8, 9):
            await set_compliance_rate(enrollments, compliant)
            states.append(
                (
                    await completed_run(
                        api, schedule_id, people.headers, run_worker, delivery_resources
                    )
                )["evaluation"]["alert"]["state"]
            )
    assert states == ["fired", "still-firing", "still-firing", "still-firing", "recovered"]
    assert [m["Subject"] for m in smtp_server.messages()] == ["Alert: Mandatory training"]


async def test_unknown_metrics_and_incomplete_conditions_are_named_in_one_422(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    people = await delivery_people(auth)
    body = _body()
    body["alert"]["conditions"] = [
        {"metric": "complianceRate", "op": "<", "value": 80},
        {"metric": "passRate", "op": ">", "value": 1},
        {"metric": "overdue", "change": "rise"},
    ]
    answer = await client.post(SCHEDULES, json=body, headers=people.headers)
    assert answer.status_code == 422, answer.text
    fields = {e["field"]: e["type"] for e in answer.json()["errors"]}
    assert fields == {
        "body.alert.conditions.1.metric": "unknown-metric",
        "body.alert.conditions.2.by": "missing",
    }
    created = await client.post(SCHEDULES, json=_body(), headers=people.headers)
    assert created.status_code == 201, created.text
    patched = await client.patch(
        f"{SCHEDULES}/{created.json()['id']}",
        json={"alert": {"conditions": [{"metric": "nope", "op": "<", "value": 1}]}},
        headers=people.headers,
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["errors"][0]["field"] == "body.alert.conditions.0.metric"
    removed = await client.patch(
        f"{SCHEDULES}/{created.json()['id']}", json={"alert": None}, headers=people.headers
    )
    assert removed.status_code == 200 and removed.json()["alert"] is None
    meta = await client.get(
        "/api/v1/reports/metadata/report-types/compliance-status", headers=people.headers
    )
    metrics = {m["key"]: m for m in meta.json()["alertableMetrics"]}
    assert metrics["complianceRate"]["unit"] == "%"
    assert metrics["complianceRate"]["description"].startswith("Compliant ÷")
    assert metrics["overdue"]["unit"] == "count"


async def test_evaluate_says_what_would_be_sent_without_sending_or_moving_state(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    enrollments = await mandatory_enrollments([f"Learner {n}" for n in range(10)], due_in=-WEEK)
    await set_compliance_rate(enrollments, 5)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={**_body(), "recipients": [str(people.ann.id)]},
            headers=people.headers,
        )
        schedule_id = created.json()["id"]
        for _ in range(2):  # the same answer twice: nothing moved in between
            answer = await api.post(f"{SCHEDULES}/{schedule_id}/evaluate", headers=people.headers)
            assert answer.status_code == 200, answer.text
            out = answer.json()
            assert out["alert"]["state"] == "fired"
            assert out["alert"]["conditions"][0]["measured"] == 50.0
            assert out["wouldSend"] == {
                "kind": "alert",
                "subject": "Alert: Mandatory training",
                "recipients": ["ann@example.test"],
                "webhooks": 0,
            }
            assert {m["key"]: m["value"] for m in out["metrics"]}["overdue"] == 5
        assert await ReportDelivery.find().count() == 0
        assert await ReportJob.find().count() == 0
        schedule = await ReportSchedule.get(PydanticObjectId(schedule_id))
        assert schedule is not None and schedule.alert_states == {}
        assert await send_due(delivery_resources, worker_id="w1") == 0
        assert smtp_server.messages() == []

        # Once a run fired, evaluate reads the same scope's state: still firing, nothing to send.
        await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
        later = (
            await api.post(f"{SCHEDULES}/{schedule_id}/evaluate", headers=people.headers)
        ).json()
        assert later["alert"]["state"] == "still-firing"
        assert later["wouldSend"] == {
            "kind": "none",
            "subject": None,
            "recipients": [],
            "webhooks": 0,
        }
    assert len(smtp_server.messages()) == 1


async def test_a_commit_that_dies_after_evaluating_moves_nothing_and_the_run_sends_once(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    """The alert's evaluation, its state and the deliveries are one transaction: one aborted
    after the gate wrote everything leaves no state, no audit and no delivery; the run that
    follows fires once."""
    people = await delivery_people(auth)
    enrollments = await mandatory_enrollments([f"Learner {n}" for n in range(10)], due_in=-WEEK)
    await set_compliance_rate(enrollments, 5)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={**_body(), "recipients": [str(people.ann.id)]},
            headers=people.headers,
        )
        schedule_id = created.json()["id"]
        run = await api.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=people.headers)
        job = await ReportJob.get(PydanticObjectId(run.json()["id"]))
        assert job is not None
        figures = [
            Figure("complianceRate", "Compliance rate", 50.0, ColumnType.PERCENT),
        ]
        client = ReportJob.get_pymongo_collection().database.client
        gate = AlertGate(job, figures)

        class Crash(Exception):
            pass

        async def dies(session: Any) -> None:
            planned = await gate.choose([], session)
            assert planned == [] and gate.outcome is not None
            assert gate.outcome.state == "fired"
            raise Crash  # the worker dies before the commit

        async with client.start_session() as session:
            try:
                await session.with_transaction(dies)
            except Crash:
                pass
        schedule = await ReportSchedule.get(PydanticObjectId(schedule_id))
        assert schedule is not None and schedule.alert_states == {}
        assert await AuditEvent.find({"action": "schedule.alert-fired"}).count() == 0

        await run_worker()
        assert await send_due(delivery_resources, worker_id="w1") == 1
        done = await ReportJob.get(job.id)
        assert done is not None and done.evaluation is not None
        assert done.evaluation.alert is not None and done.evaluation.alert.state == "fired"
    assert [m["Subject"] for m in smtp_server.messages()] == ["Alert: Mandatory training"]
    assert await AuditEvent.find({"action": "schedule.alert-fired"}).count() == 1


async def test_each_recipient_scope_keeps_its_own_alert_state(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    """Audience `recipient`: Ann (admin) sees the overdue Safety learners, Ben (a Finance
    manager) none of them; the alert fires in Ann's scope only and only Ann is told."""
    people = await delivery_people(auth)
    enrollments = await mandatory_enrollments([f"Learner {n}" for n in range(10)], due_in=-WEEK)
    await set_compliance_rate(enrollments, 5)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={
                **_body(),
                "audience": "recipient",
                "recipients": [str(people.ann.id), str(people.ben.id)],
            },
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        run = await api.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=people.headers)
        assert run.status_code == 202, run.text
        await run_worker()
        await send_due(delivery_resources, worker_id="w1")
        runs = (await api.get(f"{SCHEDULES}/{schedule_id}/runs", headers=people.headers)).json()
        states = sorted(r["evaluation"]["alert"]["state"] for r in runs["items"])
        assert states == ["fired", "not-met"]
        shown = (await api.get(f"{SCHEDULES}/{schedule_id}", headers=people.headers)).json()
        assert sorted(s["state"] for s in shown["alertState"]) == ["fired", "not-met"]
    assert [(m["To"], m["Subject"]) for m in smtp_server.messages()] == [
        ("ann@example.test", "Alert: Mandatory training")
    ]


async def test_a_drop_since_the_previous_run_fires_and_the_webhook_says_why(
    delivery_resources: Resources,
    auth: TokenFactory,
    smtp_server: Mailbox,
    http_receiver: Receiver,
    run_worker: Any,
) -> None:
    people = await delivery_people(auth)
    enrollments = await mandatory_enrollments([f"Learner {n}" for n in range(10)], due_in=-WEEK)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        body = _body()
        body["alert"]["conditions"] = [
            {"metric": "complianceRate", "change": "drop", "by": 20, "relative": True}
        ]
        created = await api.post(
            SCHEDULES,
            json={**body, "webhooks": [{"url": http_receiver.url()}]},
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        states = []
        for compliant in (10, 9, 6):  # 100 %, 90 % (a 10 % drop), 60 % (a 33.3 % drop)
            await set_compliance_rate(enrollments, compliant)
            run = await completed_run(
                api, schedule_id, people.headers, run_worker, delivery_resources
            )
            states.append(run["evaluation"]["alert"]["state"])
        assert states == ["not-met", "not-met", "fired"]
        condition = run["evaluation"]["alert"]["conditions"][0]
        assert (condition["previous"], condition["measured"]) == (90.0, 60.0)
        assert round(condition["amount"], 1) == 33.3
        [delivery] = run["deliveries"]
        job = await ReportJob.get(PydanticObjectId(run["id"]))
        assert job is not None and job.result is not None
        # The same job committed again by a worker whose lease is gone decides nothing.
        gate = AlertGate(
            job, [Figure("complianceRate", "Compliance rate", 0.0, ColumnType.PERCENT)]
        )
        again = await outbox.commit_completed(
            job,
            job.result,
            utcnow() + timedelta(days=1),
            delivery_resources.settings,
            lambda session: jobs.finish_held(job.id, "stale", {}, session=session),  # type: ignore[arg-type]
            delivers=schedules.delivers,
            choose=gate.choose,
        )
        assert again is False and gate.outcome is None
        assert await ReportDelivery.find({"job_id": job.id}).count() == 1
    [call] = http_receiver.requests
    data = json.loads(call.body)["data"]
    assert data["alert"]["state"] == "fired"
    assert data["alert"]["conditions"][0]["metric"] == "complianceRate"
    assert data["alert"]["conditions"][0]["measured"] == 60.0
    assert delivery["status"] == "sent"
