"""Audience `department-managers`: one schedule reaches the managers of a department subtree
found in the platform data at each run, each with the data of their own scope; departments
without a manager are named on the run and the owner is told once."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from app.common.time import utcnow
from app.platform.models import Department, User
from app.reports.jobs.models import JobStatus, ReportJob
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.deliveries import Mailbox, run_now_and_send, schedule_body
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"


async def _organisation() -> dict[str, Department]:
    """Org → North → (N1, N2), Org → South; one learner with an enrollment in each."""
    org = await f.department("Org", code="ORG")
    north = await f.department("North", code="NOR", parent=org)
    south = await f.department("South", code="SOU", parent=org)
    n1 = await f.department("North One", code="NO1", parent=north)
    n2 = await f.department("North Two", code="NO2", parent=north)
    tree = {"org": org, "north": north, "south": south, "n1": n1, "n2": n2}
    course = await f.course("C-1")
    for key, dept in tree.items():
        learner = await f.user(f"Learner {key}", dept=dept, email=f"learner-{key}@example.test")
        await f.enrollment(learner, course, enrolled_at=utcnow() - timedelta(days=2))
    return tree


async def _manager(name: str, dept: Department) -> User:
    email = f"{name.lower().replace(' ', '.')}@example.test"
    return await f.user(name, dept=dept, roles=["manager"], email=email)


def _learners(message: Any) -> set[str]:
    [attachment] = list(message.iter_attachments())
    content = attachment.get_content()
    text = content.decode() if isinstance(content, bytes) else content
    return {row["Learner"] for row in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))}


async def test_each_manager_of_the_tree_gets_their_own_scope_and_new_managers_join_by_themselves(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
) -> None:
    tree = await _organisation()
    owner = await f.user("Olga Owner", dept=tree["org"], roles=["admin"], email="olga@example.test")
    headers = auth("admin", sub=str(owner.id), name="Olga Owner")
    managers = {
        "org": [await _manager("Ora One", tree["org"]), await _manager("Otto Two", tree["org"])],
        "north": [await _manager("Nina North", tree["north"])],
        "south": [await _manager("Sam South", tree["south"]), await _manager("Sue South", tree["south"])],
        "n1": [await _manager("Nils One", tree["n1"]), await _manager("Nora One", tree["n1"])],
    }  # fmt: skip
    # Not reached: an inactive manager, a learner, a manager outside the subtree.
    await f.user("Ivy Inactive", dept=tree["n2"], roles=["manager"], status="inactive")
    await f.user("Leo Learner", dept=tree["n2"])
    elsewhere = await f.department("Elsewhere", code="ELS")
    await _manager("Eve Elsewhere", elsewhere)

    created = await delivery_client.post(
        SCHEDULES,
        json=schedule_body(
            audience="department-managers",
            departmentManagers={"departmentId": str(tree["org"].id)},
            delivery="attach",
        ),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["departmentManagers"] == {
        "departmentId": str(tree["org"].id),
        "includeSubDepartments": True,
    }
    await run_now_and_send(delivery_client, headers, schedule["id"], run_worker, delivery_resources)

    jobs = await ReportJob.find({"schedule_id": {"$exists": True}}).to_list()
    assert len(jobs) == 4 and {j.status for j in jobs} == {JobStatus.COMPLETED}  # one a scope
    expected = {
        "org": {f"Learner {k}" for k in tree},
        "north": {"Learner north", "Learner n1", "Learner n2"},
        "south": {"Learner south"},
        "n1": {"Learner n1"},
    }
    messages = smtp_server.messages()
    reports = [m for m in messages if list(m.iter_attachments())]
    by_to = {m["To"]: _learners(m) for m in reports}
    assert len(reports) == 7
    for key, people in managers.items():
        for manager in people:
            assert by_to[manager.email] == expected[key], manager.name
    # The department without a manager is named on the run, and the owner told once.
    runs = await delivery_client.get(f"{SCHEDULES}/{schedule['id']}/runs", headers=headers)
    skipped = [s for run in runs.json()["items"] for s in run["skippedRecipients"]]
    assert [(s["departmentName"], s["reason"]) for s in skipped] == [("North Two", "no-manager")]
    told = [m for m in messages if m["To"] == "olga@example.test"]
    assert len(told) == 1 and "North Two" in told[0].get_body().get_content()  # type: ignore[union-attr]

    # A manager added in the platform receives the next run; the owner is not told again.
    await _manager("Nele Two", tree["n2"])
    before = len(smtp_server.messages())
    await run_now_and_send(delivery_client, headers, schedule["id"], run_worker, delivery_resources)
    new = smtp_server.messages()[before:]
    to_nele = [m for m in new if m["To"] == "nele.two@example.test"]
    assert len(to_nele) == 1 and _learners(to_nele[0]) == {"Learner n2"}
    assert len([m for m in new if list(m.iter_attachments())]) == 8
    # ... and N2 has a manager now: the owner hears that every department is covered again.
    assert [m["To"] for m in new if not list(m.iter_attachments())] == ["olga@example.test"]


async def test_department_managers_is_checked_when_saved(
    delivery_client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
) -> None:
    tree = await _organisation()
    owner = await f.user("Olga Owner", dept=tree["org"], roles=["admin"], email="olga@example.test")
    admin = auth("admin", sub=str(owner.id), name="Olga Owner")
    missing = await delivery_client.post(
        SCHEDULES,
        json=schedule_body(audience="department-managers", recipients=[str(owner.id)]),
        headers=admin,
    )
    assert missing.status_code == 422
    fields = {e["field"] for e in missing.json()["errors"]}
    assert {"body.departmentManagers", "body.recipients"} <= fields

    wrong = await delivery_client.post(
        SCHEDULES, json=schedule_body(departmentManagers={"departmentId": str(tree["org"].id)}),
        headers=admin,
    )  # fmt: skip
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "body.departmentManagers"

    # A manager bursts within their own subtree only.
    boss = await _manager("Nina North", tree["north"])
    manager = auth("manager", sub=str(boss.id), departments=[str(tree["north"].id)])
    outside = await delivery_client.post(
        SCHEDULES,
        json=schedule_body(
            audience="department-managers",
            departmentManagers={"departmentId": str(tree["south"].id)},
        ),
        headers=manager,
    )
    assert outside.status_code == 422
    assert outside.json()["errors"][0]["field"] == "body.departmentManagers.departmentId"

    # Past the limit of managers a run may reach: refused up front, naming the limit.
    delivery_resources.settings.burst_max_recipients = 1
    try:
        await _manager("Sam South", tree["south"])
        await _manager("Sue South", tree["south"])
        too_many = await delivery_client.post(
            SCHEDULES,
            json=schedule_body(
                audience="department-managers",
                departmentManagers={"departmentId": str(tree["org"].id)},
            ),
            headers=admin,
        )
    finally:
        delivery_resources.settings.burst_max_recipients = 500
    assert too_many.status_code == 422
    assert "BURST_MAX_RECIPIENTS" in too_many.json()["errors"][0]["message"]
