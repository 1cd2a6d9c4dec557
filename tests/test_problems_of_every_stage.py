"""A body with mistakes of different stages — its shape (a malformed date, an unknown code, a
wrong type), the report type's parameters (lookups, date bounds), the columns, the caller's data
scope, the schedule's rules — gets one 422 naming every one of them, on POST /jobs, POST
/preview, POST and PATCH /schedules and POST and PATCH /templates. Each problem is named as it
is when it is the only one (the shape's first, then the others), once, in a stable order, and
fixing what the answer names is enough: the next try succeeds. What a shape mistake leaves
undecided (the parameters of a report type that is not one, the timing of a frequency that is
not one) is not judged; a refusal waits for valid input; a malformed body is never a 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.reports.jobs.models import ReportJob
from app.reports.schedules.models import ReportSchedule
from app.reports.templates.models import ReportTemplate
from app.runtime import body_checks
from tests import factories
from tests.helpers.tokens import TokenFactory

CONTRACT = json.loads((Path(__file__).resolve().parents[1] / "openapi.json").read_text())
API = "/api/v1/reports"
JOBS, PREVIEW = f"{API}/jobs", f"{API}/preview"
SCHEDULES, TEMPLATES = f"{API}/schedules", f"{API}/templates"
# A day that does not exist: malformed where the body's shape takes a date, an invalid
# parameter where the report type's parameters do.
NO_SUCH_DAY = "2026-02-30"
HALF_DONE = {"statuses": ["half-done"]}  # not an enrollment status (a lookup)
BACKWARDS = {"dateRange": {"preset": "custom", "from": "2026-03-01", "to": "2026-01-31"}}


@pytest.fixture
async def manager(auth: TokenFactory) -> dict[str, Any]:
    mine = await factories.department("Sales")
    other = await factories.department("Support")
    user = await factories.user("Mia Manager", dept=mine, roles=["manager"])
    headers = auth("manager", sub=str(user.id), name="Mia Manager", departments=[str(mine.id)])
    return {"headers": headers, "other": str(other.id)}


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["code"] == "validation-failed"
    for error in problem["errors"]:
        assert error["field"] and error["message"] and error["code"], error
    keys = [(e["field"], e["code"], e["message"]) for e in problem["errors"]]
    assert len(keys) == len(set(keys)), f"named twice: {keys}"
    return problem


def _fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in _problem(response)["errors"]]


def _codes(response: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["code"] for e in _problem(response)["errors"]}


async def _one_answer_for_both(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str],
    shape: dict[str, Any],
    rules: dict[str, Any],
    both: dict[str, Any],
) -> list[dict[str, Any]]:
    """`both` (the shape mistakes of `shape` and the other mistakes of `rules`) is answered
    with the errors of `shape` alone followed by those of `rules` alone, the same each time."""
    alone = [
        _problem(await client.request(method, url, json=b, headers=headers)) for b in (shape, rules)
    ]
    answers = [
        _problem(await client.request(method, url, json=both, headers=headers)) for _ in "12"
    ]
    assert answers[0]["errors"] == answers[1]["errors"]  # a stable order
    errors: list[dict[str, Any]] = answers[0]["errors"]
    assert errors == alone[0]["errors"] + alone[1]["errors"], errors
    assert all(e["field"] in answers[0]["detail"] for e in errors[:5])
    return errors


@pytest.mark.parametrize("url", [JOBS, PREVIEW])
async def test_a_report_request_with_mistakes_of_every_stage_is_one_422(
    client: httpx.AsyncClient, manager: dict[str, Any], url: str
) -> None:
    good: dict[str, Any] = {
        "reportType": "learner-progress",
        "format": "csv",
        "locale": "de",
        "parameters": {"dateRange": {"preset": "last-30-days"}},
    }
    wrong_parameters = {
        "dateRange": {"preset": "custom", "from": NO_SUCH_DAY, "to": "2026-03-31"},
        "departmentIds": [manager["other"]],
    }
    shape = {**good, "locale": "xx"}  # not a supported locale
    rules = {**good, "parameters": wrong_parameters, "columns": ["learnerName", "nope"]}
    both = {**rules, "locale": "xx"}
    errors = await _one_answer_for_both(client, "POST", url, manager["headers"], shape, rules, both)
    assert {e["field"]: e["code"] for e in errors} == {
        "body.locale": "locale",
        "parameters.dateRange.from": "date-from-datetime-parsing",
        "body.columns[1]": "column-unknown",
        "parameters.departmentIds": "scope-exceeded",
    }
    assert await ReportJob.find_all().count() == 0

    # Fixing what was named is enough.
    fixed = {
        **good,
        "parameters": {"dateRange": {"preset": "last-30-days"}},
        "columns": ["learnerName"],
    }
    answered = await client.post(url, json=fixed, headers=manager["headers"])
    assert answered.status_code == (202 if url == JOBS else 200), answered.text


async def test_a_job_from_a_template_names_its_mistakes_under_body(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    template = {
        "name": "Progress",
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "last-7-days"}},
    }
    created = await client.post(TEMPLATES, json=template, headers=manager["headers"])
    assert created.status_code == 201, created.text
    run = {"templateId": created.json()["id"], "format": "docx", "parameters": HALF_DONE}
    codes = _codes(await client.post(JOBS, json=run, headers=manager["headers"]))
    assert codes == {"body.format": "lookup-code", "body.parameters.statuses.0": "lookup-code"}


async def test_a_schedule_with_mistakes_of_every_stage_is_one_422(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    good: dict[str, Any] = {
        "name": "Weekday mornings",
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "yesterday"}},
        "frequency": "cron",
        "cronExpression": "30 7 * * 1-5",
        "timezone": "Europe/Berlin",
        "startDate": "2026-03-02",
    }
    shape = {**good, "timezone": "Mars/Olympus", "startDate": NO_SUCH_DAY}
    rules = {
        **good,
        "cronExpression": "61 7 * * 1-5",  # a minute past 59
        "parameters": {"departmentIds": [manager["other"]]},
        "columns": ["nope"],
    }
    both = {**rules, "timezone": "Mars/Olympus", "startDate": NO_SUCH_DAY}
    errors = await _one_answer_for_both(
        client, "POST", SCHEDULES, manager["headers"], shape, rules, both
    )
    assert [e["field"] for e in errors] == [
        "body.timezone",
        "body.startDate",
        "body.cronExpression",
        "body.columns[0]",
        "body.parameters.departmentIds",
    ]
    assert await ReportSchedule.find_all().count() == 0
    created = await client.post(SCHEDULES, json=good, headers=manager["headers"])
    assert created.status_code == 201, created.text


async def test_a_schedule_change_with_mistakes_of_every_stage_is_one_422(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    weekly = {
        "name": "Nightly",
        "reportType": "compliance-status",
        "format": "csv",
        "frequency": "weekly",
        "dayOfWeek": 1,
        "timeOfDay": "02:30",
    }
    created = await client.post(SCHEDULES, json=weekly, headers=manager["headers"])
    assert created.status_code == 201, created.text
    url = f"{SCHEDULES}/{created.json()['id']}"
    change = {
        "timezone": "Mars/Olympus",  # not a timezone: the shape
        "dayOfMonth": 3,  # not used by a weekly schedule: a timing rule
        "parameters": {"departmentIds": [manager["other"]]},  # outside the scope
        "alert": {"conditions": [{"metric": "nope", "op": "<", "value": 80}]},
    }
    errors = _problem(await client.patch(url, json=change, headers=manager["headers"]))["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        ("body.timezone", "value-error"),
        ("body.dayOfMonth", "not-allowed"),
        ("body.alert.conditions.0.metric", "unknown-metric"),
        ("body.parameters.departmentIds", "scope-exceeded"),
    ]
    unchanged = (await client.get(url, headers=manager["headers"])).json()
    assert unchanged["timezone"] == "UTC" and unchanged["parameters"] == {}
    assert unchanged["alert"] is None

    fixed = {"timezone": "Europe/Berlin", "parameters": {}}
    assert (await client.patch(url, json=fixed, headers=manager["headers"])).status_code == 200


async def test_a_template_with_mistakes_of_every_stage_is_one_422(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    good: dict[str, Any] = {
        "name": "Progress",
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "last-7-days"}},
    }
    shape = {**good, "name": "   ", "visibility": "everyone"}
    rules = {**good, "parameters": {**HALF_DONE, **BACKWARDS}, "columns": ["nope"]}
    both = {**rules, "name": "   ", "visibility": "everyone"}
    errors = await _one_answer_for_both(
        client, "POST", TEMPLATES, manager["headers"], shape, rules, both
    )
    assert {e["field"]: e["code"] for e in errors} == {
        "body.name": "value-error",
        "body.visibility": "lookup-code",
        "body.parameters.dateRange.to": "value-error",
        "body.parameters.statuses.0": "lookup-code",
        "body.columns[0]": "column-unknown",
    }
    assert await ReportTemplate.find_all().count() == 0


async def test_a_template_change_with_mistakes_of_every_stage_is_one_422(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    template = {
        "name": "Progress",
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "last-7-days"}},
    }
    created = await client.post(TEMPLATES, json=template, headers=manager["headers"])
    assert created.status_code == 201, created.text
    url = f"{TEMPLATES}/{created.json()['id']}"
    headers = {**manager["headers"], "If-Match": '"1"'}
    change = {
        "locale": "xx",
        "parameters": {"departmentIds": [manager["other"]]},
        "columns": ["nope"],
    }
    codes = _codes(await client.patch(url, json=change, headers=headers))
    assert codes == {
        "body.locale": "locale",
        "body.columns[0]": "column-unknown",
        "body.parameters.departmentIds": "scope-exceeded",
    }
    assert (await client.get(url, headers=headers)).json()["version"] == 1
    fixed = {"locale": "de", "parameters": {}, "columns": ["learnerName"]}
    changed = await client.patch(url, json=fixed, headers=headers)
    assert changed.status_code == 200, changed.text


async def test_the_swagger_example_made_cron_with_a_typo_fails_once(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    """The contract's schedule example with `frequency: cron` and a mistyped timezone (a shape
    mistake): one answer names the timezone, every field cron does not use, the expression it
    needs and the recipients and webhook this database does not know; fixing those, it is
    created."""
    [example] = CONTRACT["components"]["schemas"]["ScheduleCreate"]["examples"]
    body = {**example, "frequency": "cron", "timezone": "Europe/Berln"}
    fields = _fields(await client.post(SCHEDULES, json=body, headers=manager["headers"]))
    assert fields[0] == "body.timezone", fields
    named = {"body.dayOfWeek", "body.timeOfDay", "body.cronExpression", "body.recipients.0"}
    assert named | {"body.webhooks.0.url"} <= set(fields), fields
    for name in ("dayOfWeek", "timeOfDay", "recipients", "webhooks"):
        del body[name]
    body.update(timezone="Europe/Berlin", cronExpression="30 7 * * 1-5")
    created = await client.post(SCHEDULES, json=body, headers=manager["headers"])
    assert created.status_code == 201, created.text


async def test_what_a_shape_mistake_leaves_undecided_is_not_judged(
    client: httpx.AsyncClient, manager: dict[str, Any]
) -> None:
    base = {"name": "Nightly", "format": "csv", "timezone": "UTC"}
    # The parameters of a report type that is not one: only the type is named.
    not_a_type = {
        **base,
        "reportType": "nope",
        "parameters": HALF_DONE,
        "frequency": "cron",
        "cronExpression": "61 * * * *",
    }
    codes = _codes(await client.post(SCHEDULES, json=not_a_type, headers=manager["headers"]))
    assert codes == {"body.reportType": "lookup-code", "body.cronExpression": "invalid"}
    # The timing of a frequency that is not one: only the frequency is named.
    not_a_frequency = {
        **base,
        "reportType": "learner-progress",
        "parameters": HALF_DONE,
        "frequency": "fortnightly",
        "cronExpression": "61 * * * *",
        "dayOfMonth": 3,
    }
    codes = _codes(await client.post(SCHEDULES, json=not_a_frequency, headers=manager["headers"]))
    assert codes == {"body.frequency": "lookup-code", "body.parameters.statuses.0": "lookup-code"}
    # A format that is not one leaves the parameters to judge (against the report type).
    not_a_format = {"reportType": "learner-progress", "format": "docx", "parameters": HALF_DONE}
    codes = _codes(await client.post(JOBS, json=not_a_format, headers=manager["headers"]))
    assert codes == {"body.format": "lookup-code", "parameters.statuses.0": "lookup-code"}


async def test_a_refusal_waits_for_valid_input(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    dept = await factories.department("Sales")
    learner = auth("learner", sub="e" * 24, departments=[str(dept.id)])
    template = {
        "name": "Mine for everyone",
        "reportType": "learner-progress",
        "format": "csv",
        "visibility": "organization",  # a learner may not publish: a 403 once the input is valid
    }
    both = {**template, "locale": "xx", "parameters": HALF_DONE}
    codes = _codes(await client.post(TEMPLATES, json=both, headers=learner))
    assert codes == {"body.locale": "locale", "body.parameters.statuses.0": "lookup-code"}
    refused = await client.post(TEMPLATES, json=template, headers=learner)
    assert refused.status_code == 403, refused.text


MALFORMED: list[Any] = [
    [],
    "text",
    42,
    {"parameters": "x"},
    {"parameters": [], "reportType": 5},
    {"parameters": {"departmentIds": "x", "dateRange": []}, "columns": {"a": 1}},
    {"reportType": "learner-progress", "format": "csv", "columns": [1, None], "locale": 5},
    {"alert": [], "changes": "x", "frequency": ["daily"], "timezone": 5},
    {"recipients": "a@example.org", "departmentManagers": [], "audience": "everyone"},
    {"templateId": [], "reportType": "learner-progress", "format": "csv", "name": {}},
    {
        "reportType": "learner-progress",
        "format": "csv",
        "locale": "xx",
        "options": {"csvDelimiter": ";", "csvDecimal": ","},
        "parameters": {"dateRange": {"preset": "custom", "from": "x", "to": None}},
    },
    {"name": "x", "frequency": "daily", "timeOfDay": "25:00", "endDate": "2020-01-01"},
]


@pytest.fixture
async def failed_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The events of checks that could not run on a body's parts (none is expected)."""
    events: list[str] = []

    class Log:
        def warning(self, event: str, **_: Any) -> None:
            events.append(event)

    monkeypatch.setattr(body_checks, "log", Log())
    return events


@pytest.mark.parametrize("body", MALFORMED, ids=lambda b: json.dumps(b)[:40])
async def test_a_malformed_body_is_a_422_on_every_route(
    client: httpx.AsyncClient, manager: dict[str, Any], failed_checks: list[str], body: Any
) -> None:
    headers = manager["headers"]
    schedule = await client.post(
        SCHEDULES,
        json={
            "name": "S",
            "reportType": "learner-progress",
            "format": "csv",
            "frequency": "daily",
            "timeOfDay": "07:00",
        },
        headers=headers,
    )
    template = await client.post(
        TEMPLATES,
        json={"name": "T", "reportType": "learner-progress", "format": "csv"},
        headers=headers,
    )
    routes = [
        ("POST", JOBS),
        ("POST", PREVIEW),
        ("POST", SCHEDULES),
        ("PATCH", f"{SCHEDULES}/{schedule.json()['id']}"),
        ("POST", TEMPLATES),
        ("PATCH", f"{TEMPLATES}/{template.json()['id']}"),
    ]
    for method, url in routes:
        response = await client.request(method, url, json=body, headers=headers)
        assert _problem(response)["errors"], (method, url)
    assert failed_checks == []
