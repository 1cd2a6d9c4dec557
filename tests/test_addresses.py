"""Where reports may go: every webhook URL the API accepts passes the same rules when it is
saved and again right before each call.

The API table: each unsafe URL on each of the four places a URL is given (POST /webhooks,
a schedule's webhooks on create and on update, a job's `webhookUrl`) is a 422 naming the
field, before any connection. The sender checks again before each call and connects to the
address it checked."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.reports.deliveries import repository, service
from app.reports.deliveries.models import (
    DeliveryConfig,
    DeliveryStatus,
    ReportDelivery,
)
from app.reports.deliveries.planning import plan_deliveries
from app.reports.deliveries.sender import send_due
from app.reports.deliveries.signing import generate_secret
from app.reports.jobs.models import ReportJob
from app.runtime.resources import Resources
from tests.helpers.api import api_client
from tests.helpers.deliveries import (
    CONNECTIONS,
    Receiver,
    completed_job,
    delivery_people,
    schedule_body,
)
from tests.helpers.unsafe_inputs import UNSAFE_URLS, stand_in_resolver

SCHEDULES = "/api/v1/reports/schedules"
JOBS = "/api/v1/reports/jobs"
WEBHOOKS = "/api/v1/reports/webhooks"
JOB_BODY: dict[str, Any] = {
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "last-7-days"}},
}


@pytest.fixture(params=["production-like", "local"])
async def api(
    request: pytest.FixtureRequest, delivery_resources: Resources
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with no network allowed (as in production) and with the local allow-list
    (WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32, as `make run` and the delivery tests have it)."""
    resources = delivery_resources
    if request.param == "production-like":
        settings = resources.settings.model_copy(update={"webhook_allowed_networks": ""})
        resources = dataclasses.replace(resources, settings=settings)
    application = create_app(resources.settings, resources=resources)
    async with application.router.lifespan_context(application), api_client(application) as c:
        yield c


def _outside_connections() -> list[Any]:
    """Connections made while the log was on, other than to the test's own MongoDB / Redis on
    127.0.0.1 (a webhook URL of the table has port 80, 443 or 8080)."""
    return [
        a
        for a in CONNECTIONS.addresses
        if isinstance(a, tuple) and (a[0] != "127.0.0.1" or a[1] in (80, 443, 8080))
    ]


async def _refusals(
    send: Any, field: str, table: list[tuple[str, str]]
) -> list[tuple[str, int, Any]]:
    """Sends each URL of `table`; returns those not refused as expected."""
    wrong = []
    CONNECTIONS.addresses.clear()
    CONNECTIONS.active = True
    try:
        for url, reason in table:
            response = await send(url)
            errors = response.json().get("errors") or [{}]
            if (
                response.status_code != 422
                or errors[0].get("field") != field
                or errors[0].get("type") != "unsafe-url"
                or reason not in errors[0].get("message", "")
            ):
                wrong.append((url, response.status_code, errors))
    finally:
        CONNECTIONS.active = False
    assert _outside_connections() == []
    return wrong


@pytest.mark.parametrize("place", ["webhooks", "schedule-create", "schedule-update", "job"])
async def test_every_unsafe_url_is_a_422_naming_the_field_on_every_entry_point(
    api: httpx.AsyncClient, auth: Any, place: str
) -> None:
    people = await delivery_people(auth)
    headers, owner = people.headers, str(people.owner.id)
    field = {
        "webhooks": "body.url",
        "schedule-create": "body.webhooks.0.url",
        "schedule-update": "body.webhooks.0.url",
        "job": "body.webhookUrl",
    }[place]
    schedule = (await api.post(SCHEDULES, json=schedule_body(), headers=headers)).json()

    async def send(url: str) -> httpx.Response:
        if place == "webhooks":
            return await api.post(WEBHOOKS, json={"url": url}, headers=headers)
        if place == "schedule-create":
            body = schedule_body(webhooks=[{"url": url}])
            return await api.post(SCHEDULES, json=body, headers=headers)
        if place == "schedule-update":
            body = {"webhooks": [{"url": url}]}
            return await api.patch(f"{SCHEDULES}/{schedule['id']}", json=body, headers=headers)
        # An endpoint stored before these rules existed: the job's check refuses it anyway.
        await repository.create_endpoint(owner_user_id=owner, url=url, secret=generate_secret())
        return await api.post(JOBS, json={**JOB_BODY, "webhookUrl": url}, headers=headers)

    assert await _refusals(send, field, UNSAFE_URLS) == []
    assert await ReportJob.find_all().count() == 0
    if place != "job":  # nothing refused was stored
        listed = await api.get(WEBHOOKS, headers=headers)
        assert listed.status_code == 200 and listed.json() == []


async def test_a_webhook_is_resolved_once_per_call_and_a_rebound_name_is_refused(
    delivery_resources: Resources, http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call goes to the address the check resolved (no second lookup by the HTTP client),
    with the name in the Host header; when the name later resolves to a NAT64 form of a
    loopback address, the next call is refused before any connection."""
    res = delivery_resources
    answers = {"hooks.example": ["127.0.0.1"]}
    asked = stand_in_resolver(monkeypatch, answers)
    url = f"http://hooks.example:{http_receiver.port}/hook"
    endpoint, _ = await service.register_endpoint(res.settings, "owner-1", url, None)
    assert asked == ["hooks.example"]
    job = await completed_job(res)
    config = DeliveryConfig(webhook_endpoint_ids=[endpoint.id])  # type: ignore[list-item]

    async def deliver() -> ReportDelivery:
        [delivery] = plan_deliveries(job, config, [endpoint], res.settings, report_name="R")
        await repository.insert_many([delivery])
        await send_due(res, worker_id="w1")
        stored = await repository.get(delivery.id)  # type: ignore[arg-type]
        assert stored is not None
        return stored

    sent = await deliver()
    assert sent.status == DeliveryStatus.SENT, sent.last_error
    assert asked == ["hooks.example"] * 2  # the check before the call, and nothing else
    [call] = http_receiver.requests
    assert call.headers["host"] == f"hooks.example:{http_receiver.port}"

    answers["hooks.example"] = ["64:ff9b::7f00:1"]  # rebinding
    CONNECTIONS.addresses.clear()
    CONNECTIONS.active = True
    try:
        refused = await deliver()
    finally:
        CONNECTIONS.active = False
    assert (refused.status, refused.attempts) == (DeliveryStatus.FAILED, 1)
    assert "NAT64 address of 127.0.0.1" in (refused.last_error or "")
    assert len(http_receiver.requests) == 1
    assert [
        a for a in CONNECTIONS.addresses if isinstance(a, tuple) and a[1] == http_receiver.port
    ] == []
