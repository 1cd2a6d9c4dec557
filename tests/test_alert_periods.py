"""Alerts comparing with the previous period, and evaluate for a department-managers audience,
on real servers: a completion rate that dropped from the week before fires a `versus:
previous-period` alert (the previous week read in the schedule's timezone, across a
daylight-saving change), evaluate says the same without writing anything, a type without a date
range is a 422 naming the condition's `versus`; evaluate lists the managers a run would send to.
"""

from __future__ import annotations

from typing import Any

import httpx
from beanie import PydanticObjectId

from app.audit import AuditEvent
from app.main import create_app
from app.platform.models import Course, Department
from app.reports.deliveries.models import ReportDelivery
from app.reports.jobs.models import ReportJob
from app.reports.schedules.alerts.periods import previous_parameters
from app.reports.schedules.models import ReportSchedule
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.deliveries import Mailbox, completed_run, delivery_people, schedule_body
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"
UTC_ = f.dt


def _text(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


async def _two_weeks() -> Course:
    """Enrollments in SAF-1 over two Berlin weeks: 25–31 October 2026 (the clocks go back on
    the 25th), 3 of 4 completed (75 %), then 1–7 November, 1 of 4 completed (25 %); and one
    just before the first week (Berlin 24 October, 23:30) that no week holds."""
    dept = await f.department("Safety", code="SAF")
    course = await f.course("SAF-1", mandatory=True)
    enrolled = [
        # the week before: Berlin 25 Oct 00:30 (CEST, UTC+2) … 31 Oct 23:30 (CET, UTC+1)
        (UTC_(2026, 10, 24, 22, 30), True),
        (UTC_(2026, 10, 28, 10), True),
        (UTC_(2026, 10, 29, 10), True),
        (UTC_(2026, 10, 31, 22, 30), False),
        # outside both: Berlin 24 Oct 23:30 (would make the week before 60 % if counted)
        (UTC_(2026, 10, 24, 21, 30), False),
        # the run's week: Berlin 1–7 November
        (UTC_(2026, 11, 2, 10), True),
        (UTC_(2026, 11, 3, 10), False),
        (UTC_(2026, 11, 4, 10), False),
        (UTC_(2026, 11, 5, 10), False),
    ]
    for n, (at, done) in enumerate(enrolled):
        learner = await f.user(f"Learner {n}", dept=dept)
        await f.enrollment(
            learner,
            course,
            enrolled_at=at,
            status="completed" if done else "in-progress",
            completed_at=at.replace(hour=23) if done else None,
        )
    return course


def _schedule(course: Course, **extra: Any) -> dict[str, Any]:
    return schedule_body(
        name="Weekly completion",
        parameters={
            "dateRange": {"preset": "custom", "from": "2026-11-01", "to": "2026-11-07"},
            "courseIds": [str(course.id)],
        },
        timezone="Europe/Berlin",
        alert={
            "conditions": [
                {
                    "metric": "completionRate",
                    "change": "drop",
                    "by": 30,
                    "versus": "previous-period",
                }
            ]
        },
        **extra,
    )


async def test_a_drop_from_the_previous_period_fires_and_evaluate_says_so_first(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    course = await _two_weeks()
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json=_schedule(course, recipients=[str(people.ann.id)]),
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        assert created.json()["alert"]["conditions"][0]["versus"] == "previous-period"

        # Evaluate: the same answer as the run will give, and nothing written.
        answer = await api.post(f"{SCHEDULES}/{schedule_id}/evaluate", headers=people.headers)
        assert answer.status_code == 200, answer.text
        out = answer.json()
        [condition] = out["alert"]["conditions"]
        assert (condition["previous"], condition["measured"]) == (75.0, 25.0)
        assert condition["amount"] == 50.0 and condition["met"] is True
        assert out["alert"]["state"] == "fired"
        assert out["wouldSend"]["kind"] == "alert"
        assert out["wouldSend"]["recipients"] == ["ann@example.test"]
        assert await ReportJob.find().count() == 0
        assert await ReportDelivery.find().count() == 0
        schedule = await ReportSchedule.get(PydanticObjectId(schedule_id))
        assert schedule is not None and schedule.alert_states == {}
        assert smtp_server.messages() == []

        run = await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
    alert = run["evaluation"]["alert"]
    assert alert["state"] == "fired" and alert["notified"] is True
    [condition] = alert["conditions"]
    assert condition["versus"] == "previous-period"
    assert (condition["previous"], condition["measured"], condition["amount"]) == (75.0, 25.0, 50.0)
    [mail] = smtp_server.messages()
    assert mail["Subject"] == "Alert: Weekly completion"
    assert (
        "Completion rate: 75 % → 25 % (drop by at least 30 % from the previous period): met"
        in _text(mail)
    )
    [audit] = await AuditEvent.find({"action": "schedule.alert-fired"}).to_list()
    assert audit.details["values"] == {"completionRate": 25.0}


async def test_a_previous_run_change_keeps_comparing_with_the_previous_run(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    """The same data with a previous-run change: the first run has nothing to compare with
    (no previous value, not met); the previous period's figure is not used for it."""
    people = await delivery_people(auth)
    course = await _two_weeks()
    body = _schedule(course, recipients=[str(people.ann.id)])
    body["alert"]["conditions"][0]["versus"] = "previous-run"
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(SCHEDULES, json=body, headers=people.headers)
        assert created.status_code == 201, created.text
        run = await completed_run(
            api, created.json()["id"], people.headers, run_worker, delivery_resources
        )
    [condition] = run["evaluation"]["alert"]["conditions"]
    assert condition["previous"] is None and condition["measured"] == 25.0
    assert run["evaluation"]["alert"]["state"] == "not-met"
    assert smtp_server.messages() == []


async def test_a_type_without_a_date_range_cannot_compare_with_the_previous_period(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    people = await delivery_people(auth)
    body = schedule_body(
        reportType="compliance-status",
        parameters={},
        alert={
            "conditions": [
                {
                    "metric": "complianceRate",
                    "change": "drop",
                    "by": 5,
                    "versus": "previous-period",
                },
                {"metric": "nope", "op": "<", "value": 1},
            ]
        },
    )
    answer = await client.post(SCHEDULES, json=body, headers=people.headers)
    assert answer.status_code == 422, answer.text
    fields = {e["field"]: e["type"] for e in answer.json()["errors"]}
    assert fields == {
        "body.alert.conditions.0.versus": "no-date-range",
        "body.alert.conditions.1.metric": "unknown-metric",
    }
    assert "previous-run" in answer.json()["errors"][0]["message"]
    # The same condition on a type with a date range is taken, on create and on update.
    period = dict(body["alert"]["conditions"][0])
    ranged = schedule_body(alert={"conditions": [{**period, "metric": "completionRate"}]})
    created = await client.post(SCHEDULES, json=ranged, headers=people.headers)
    assert created.status_code == 201, created.text
    compliance = await client.post(
        SCHEDULES,
        json=schedule_body(reportType="compliance-status", parameters={}),
        headers=people.headers,
    )
    assert compliance.status_code == 201, compliance.text
    patched = await client.patch(
        f"{SCHEDULES}/{compliance.json()['id']}",
        json={"alert": {"conditions": [period]}},
        headers=people.headers,
    )
    assert patched.status_code == 422, patched.text
    assert [e["field"] for e in patched.json()["errors"]] == ["body.alert.conditions.0.versus"]


def test_the_previous_period_is_the_same_number_of_local_days_just_before() -> None:
    """A month is compared with the same number of days before it (not the calendar month),
    in the run's timezone: midnights in Berlin, the clock change inside the period kept."""
    resolved = {
        "reportType": "learner-progress",
        "timezone": "Europe/Berlin",
        "dateRange": {
            "preset": "last-month",
            "from": "2026-11-01",
            "to": "2026-11-30",
            "start": "2026-10-31T23:00:00Z",
            "end": "2026-11-30T23:00:00Z",
            "timezone": "Europe/Berlin",
        },
        "courseIds": ["a" * 24],
    }
    before = previous_parameters(resolved)
    assert before is not None
    assert before["dateRange"] == {
        "preset": "custom",
        "from": "2026-10-02",
        "to": "2026-10-31",
        "start": "2026-10-01T22:00:00Z",  # CEST
        "end": "2026-10-31T23:00:00Z",  # CET
        "timezone": "Europe/Berlin",
    }
    assert before["courseIds"] == resolved["courseIds"]
    assert previous_parameters({"reportType": "compliance-status", "asOfDate": None}) is None


async def test_evaluate_lists_the_managers_a_department_managers_run_would_send_to(
    delivery_client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    """Ben manages Finance, Mia its Payroll team; an inactive manager is not reached."""
    people = await delivery_people(auth)
    root = await Department.get(people.ben.department_id)
    assert root is not None
    team = await f.department("Payroll", code="PAY", parent=root)
    mia = await f.user("Mia Manager", dept=team, roles=["manager"], email="mia@example.test")
    await f.user("Ivy Inactive", dept=team, roles=["manager"], status="inactive")
    created = await delivery_client.post(
        SCHEDULES,
        json=schedule_body(
            audience="department-managers", departmentManagers={"departmentId": str(root.id)}
        ),
        headers=people.headers,
    )
    assert created.status_code == 201, created.text
    answer = await delivery_client.post(
        f"{SCHEDULES}/{created.json()['id']}/evaluate", headers=people.headers
    )
    assert answer.status_code == 200, answer.text
    would = answer.json()["wouldSend"]
    assert would["kind"] == "report"
    assert would["subject"] == "Report: Weekly progress"
    assert sorted(would["recipients"]) == ["ben@example.test", mia.email]
    assert await ReportJob.find().count() == 0 and await ReportDelivery.find().count() == 0
