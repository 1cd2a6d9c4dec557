"""Before a schedule goes out: a test send reaches the caller only and counts as no run; the
audience says who the next run reaches, with which data, and matches who then receives it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.reports.jobs.models import ReportJob
from app.reports.schedules.models import ReportSchedule
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.deliveries import (
    Mailbox,
    Receiver,
    delivery_people,
    schedule_body,
    send_planned,
)
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"


async def test_a_test_send_reaches_only_the_caller_and_is_no_run(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
    http_receiver: Receiver,
) -> None:
    people = await delivery_people(auth)
    created = await delivery_client.post(
        SCHEDULES,
        json=schedule_body(
            recipients=[str(people.ann.id), str(people.ben.id)],
            audience="recipient",
            webhooks=[{"url": http_receiver.url()}],
        ),
        headers=people.headers,
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]

    sent = await delivery_client.post(f"{SCHEDULES}/{schedule_id}/test", headers=people.headers)
    assert sent.status_code == 202, sent.text
    assert sent.json()["test"] is True and sent.json()["scheduleId"] == schedule_id
    await run_worker()
    await send_planned(delivery_resources)
    [message] = smtp_server.messages()
    assert message["To"] == "olga@example.test"  # the caller, not Ann or Ben
    assert message["Subject"] == "Report: [Test] Weekly progress"
    assert message["List-Unsubscribe"] is None
    assert http_receiver.requests == []  # no endpoint is called by a test
    runs = await delivery_client.get(f"{SCHEDULES}/{schedule_id}/runs", headers=people.headers)
    [run] = runs.json()["items"]
    assert run["test"] is True and run["status"] == "completed"
    stored = await ReportSchedule.get(schedule_id)
    assert stored is not None and stored.last_outcome_job_id is None

    # As Ben (a manager) gets it: his scope, still mailed to the caller only.
    as_ben = await delivery_client.post(
        f"{SCHEDULES}/{schedule_id}/test",
        params={"asRecipient": str(people.ben.id)},
        headers=people.headers,
    )
    assert as_ben.status_code == 202, as_ben.text
    job = await ReportJob.get(as_ben.json()["id"])
    assert job is not None and job.requested_by.user_id == str(people.ben.id)
    assert job.scope and job.scope["departmentIds"] == [str(people.ben.department_id)]
    assert job.delivery and [r.address for r in job.delivery.recipients] == ["olga@example.test"]

    stranger = await f.user("Sid Stranger", roles=["manager"], email="sid@example.test")
    refused = await delivery_client.post(
        f"{SCHEDULES}/{schedule_id}/test",
        params={"asRecipient": str(stranger.id)},
        headers=people.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "query.asRecipient"
    # A manager owning no schedule cannot test someone else's (it is not visible to them).
    ben = auth("manager", sub=str(people.ben.id), departments=[str(people.ben.department_id)])
    hidden = await delivery_client.post(f"{SCHEDULES}/{schedule_id}/test", headers=ben)
    assert hidden.status_code == 404


async def test_the_audience_says_who_gets_what_and_matches_the_next_run(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
    http_receiver: Receiver,
) -> None:
    people = await delivery_people(auth)
    gone = await f.user("Gus Gone", roles=["manager"], email="gus@example.test")
    created = await delivery_client.post(
        SCHEDULES,
        json=schedule_body(
            recipients=[str(people.ann.id), str(people.ben.id), str(gone.id)],
            audience="recipient",
            webhooks=[{"url": http_receiver.url("/services/T0/B0/abcdefgh1234"), "kind": "slack"}],
        ),
        headers=people.headers,
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    gone.status = "inactive"  # deactivated in the platform after the schedule listed him
    await gone.save()
    answer = await delivery_client.get(
        f"{SCHEDULES}/{schedule_id}/audience", headers=people.headers
    )
    assert answer.status_code == 200, answer.text
    members = {m["recipient"]: m for m in answer.json()["members"]}
    ann, ben = members["ann@example.test"], members["ben@example.test"]
    assert (ann["channel"], ann["reason"], ann["scope"]) == ("email", "listed", "all data (admin)")
    assert ben["scope"] == "Finance, with their sub-departments"
    assert ann["estimatedRows"] == ben["estimatedRows"] == 1  # Lars's one enrollment
    slack = [m for m in answer.json()["members"] if m["channel"] == "slack"]
    assert {m["recipient"] for m in slack} == {"http://127.0.0.1/…1234"}
    assert {m["reason"] for m in slack} == {"slack endpoint"}
    # Called by each scope's run: Ann's (all data) and Ben's (Finance).
    assert sorted(m["scope"] for m in slack) == [
        "Finance, with their sub-departments",
        "all data (admin)",
    ]
    assert [(s["userId"], s["reason"]) for s in answer.json()["skipped"]] == [
        (str(gone.id), "inactive")
    ]

    run = await delivery_client.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=people.headers)
    assert run.status_code == 202, run.text
    await run_worker()
    await send_planned(delivery_resources)
    mailed = sorted(m["To"] for m in smtp_server.messages())
    assert mailed == sorted(k for k, m in members.items() if m["channel"] == "email")
    assert [r.path for r in http_receiver.requests] == ["/services/T0/B0/abcdefgh1234"] * len(slack)
