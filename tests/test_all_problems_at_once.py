"""A request with several independent mistakes gets one 422 naming every one of them — the
lookups, the date bounds, ids outside the caller's data scope, the schedule's timing rules and
recipients — each with its field, a kebab-case code and a reason. Ids outside the scope alone
stay a 403; a role that may not publish is refused after the input is valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.reports.schedules.models import ReportSchedule
from tests import factories
from tests.helpers.tokens import TokenFactory

CONTRACT = json.loads((Path(__file__).resolve().parents[1] / "openapi.json").read_text())
JOBS = "/api/v1/reports/jobs"
SCHEDULES = "/api/v1/reports/schedules"
TEMPLATES = "/api/v1/reports/templates"
MISTAKES = {
    # the date bounds: `to` before `from`
    "dateRange": {"preset": "custom", "from": "2026-03-01", "to": "2026-01-31"},
    # a lookup: not an enrollment status
    "statuses": ["half-done"],
}


@pytest.fixture
async def manager(auth: TokenFactory) -> dict[str, Any]:
    mine = await factories.department("Sales")
    other = await factories.department("Support")
    user = await factories.user("Mia Manager", dept=mine, roles=["manager"])
    headers = auth("manager", sub=str(user.id), name="Mia Manager", departments=[str(mine.id)])
    return {"headers": headers, "mine": str(mine.id), "other": str(other.id)}


def _by_field(problem: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert problem["status"] == 422 and problem["code"] == "validation-failed", problem
    errors = {e["field"]: e for e in problem["errors"]}
    for error in errors.values():
        assert error["message"] and error["code"] == error["type"].replace("_", "-")
    return errors


async def test_a_job_with_three_mistakes_is_one_422_naming_all_three(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    body = {
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {**MISTAKES, "departmentIds": [manager["other"]]},
    }
    response = await client.post(JOBS, json=body, headers=manager["headers"])
    assert response.status_code == 422, response.text
    errors = _by_field(response.json())
    assert set(errors) == {
        "parameters.dateRange.to",
        "parameters.statuses.0",
        "parameters.departmentIds",
    }, errors
    assert errors["parameters.departmentIds"]["code"] == "scope-exceeded"
    assert manager["other"] in errors["parameters.departmentIds"]["message"]
    assert "in-progress" in errors["parameters.statuses.0"]["allowed"]
    # The detail says them all too.
    assert all(field in response.json()["detail"] for field in errors)


async def test_ids_outside_the_scope_alone_stay_a_403(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    body = {
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"departmentIds": [manager["other"]]},
    }
    response = await client.post(JOBS, json=body, headers=manager["headers"])
    problem = response.json()
    assert response.status_code == 403 and problem["code"] == "scope-exceeded", problem
    assert problem["outOfScope"] == [manager["other"]]
    assert [e["field"] for e in problem["errors"]] == ["parameters.departmentIds"]


async def test_a_cron_schedule_with_three_mistakes_is_one_422_naming_all_three(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    body = {
        "name": "Weekday mornings",
        "reportType": "learner-progress",
        "format": "xlsx",
        "parameters": {"dateRange": {"preset": "yesterday"}, "departmentIds": [manager["other"]]},
        "frequency": "cron",
        "cronExpression": "61 7 * * 1-5",  # a minute past 59
        "timeOfDay": "07:30",  # not used with cron
        "timezone": "Europe/Berlin",
        "recipients": ["ops@elsewhere.org"],  # a domain no platform user has
    }
    response = await client.post(SCHEDULES, json=body, headers=manager["headers"])
    assert response.status_code == 422, response.text
    errors = _by_field(response.json())
    assert set(errors) == {
        "body.cronExpression",
        "body.timeOfDay",
        "body.recipients.0",
        "body.parameters.departmentIds",
    }, errors
    assert errors["body.timeOfDay"]["code"] == "not-allowed"
    assert errors["body.recipients.0"]["code"] == "domain-not-allowed"
    assert await ReportSchedule.find_all().count() == 0  # nothing was stored

    # Fixed, it is created.
    body.update(
        cronExpression="30 7 * * 1-5",
        parameters={"dateRange": {"preset": "yesterday"}},
        recipients=[],
    )
    del body["timeOfDay"]
    created = await client.post(SCHEDULES, json=body, headers=manager["headers"])
    assert created.status_code == 201, created.text


async def test_a_schedule_change_names_every_mistake(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    created = await client.post(
        SCHEDULES,
        json={
            "name": "Nightly",
            "reportType": "learner-progress",
            "format": "csv",
            "frequency": "weekly",
            "dayOfWeek": 1,
            "timeOfDay": "02:30",
        },
        headers=manager["headers"],
    )
    assert created.status_code == 201, created.text
    change = {
        "name": None,
        "frequency": "monthly",  # needs dayOfMonth
        "startDate": "2027-05-01",
        "endDate": "2027-04-01",
        "parameters": {"statuses": ["half-done"]},
    }
    url = f"{SCHEDULES}/{created.json()['id']}"
    response = await client.patch(url, json=change, headers=manager["headers"])
    assert response.status_code == 422, response.text
    assert set(_by_field(response.json())) == {
        "body.name",
        "body.dayOfMonth",
        "body.endDate",
        "body.parameters.statuses.0",
    }


async def test_a_learner_may_not_publish_a_template(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    dept = await factories.department("Sales")
    learner = auth("learner", sub="e" * 24, departments=[str(dept.id)])
    template = {
        "name": "Mine for everyone",
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "last-7-days"}},
    }
    for visibility in ("organization", "department"):
        refused = await client.post(
            TEMPLATES, json={**template, "visibility": visibility}, headers=learner
        )
        problem = refused.json()
        assert refused.status_code == 403, refused.text
        assert problem["code"] == "template-visibility-not-allowed"
        assert [(e["field"], e["allowed"]) for e in problem["errors"]] == [
            ("body.visibility", ["private"])
        ]
    # Invalid input is named first (the refusal comes once the body is valid).
    both = await client.post(
        TEMPLATES,
        json={**template, "visibility": "organization", "parameters": {"statuses": ["x"]}},
        headers=learner,
    )
    assert both.status_code == 422
    private = await client.post(TEMPLATES, json=template, headers=learner)
    assert private.status_code == 201, private.text
    # Nor make it public later; a manager may.
    url = f"{TEMPLATES}/{private.json()['id']}"
    later = await client.patch(url, json={"visibility": "organization"}, headers=learner)
    assert later.status_code == 403 and later.json()["code"] == "template-visibility-not-allowed"
    manager = auth("manager", departments=[str(dept.id)])
    shared = await client.post(
        TEMPLATES, json={**template, "visibility": "organization"}, headers=manager
    )
    assert shared.status_code == 201, shared.text


async def test_the_documented_schedule_example_made_cron_fails_once_naming_everything(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    """The contract's example body with `frequency: cron` (what a person tries first in
    Swagger): every field cron does not use, the expression it needs and the recipients and
    webhook this database does not know are named in one answer."""
    [example] = CONTRACT["components"]["schemas"]["ScheduleCreate"]["examples"]
    response = await client.post(
        SCHEDULES, json={**example, "frequency": "cron"}, headers=manager["headers"]
    )
    assert response.status_code == 422, response.text
    fields = set(_by_field(response.json()))
    assert {"body.dayOfWeek", "body.timeOfDay", "body.cronExpression"} <= fields, fields
    assert {"body.recipients.0", "body.webhooks.0.url"} <= fields, fields
