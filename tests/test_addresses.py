"""Where reports may go: every webhook URL the API accepts and every address mail goes to pass
the same rules when they are saved and again right before each message or call.

The API tables: each unsafe URL on each of the four places a URL is given (POST /webhooks,
a schedule's webhooks on create and on update, a job's `webhookUrl`) and each unsafe address
(a schedule's recipients, the token's `email` claim behind `notify.email`) is a 422 naming the
field, before any connection. The sender: what is already in the outbox is checked again and
a refusal is a permanent failure with the reason, never a retry."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId

from app.errors import ValidationFailed
from app.main import create_app
from app.reports.deliveries import repository, service
from app.reports.deliveries.addresses import AddressRefused, normalize_address
from app.reports.deliveries.models import (
    DeliveryConfig,
    DeliveryStatus,
    Recipient,
    ReportDelivery,
)
from app.reports.deliveries.planning import plan_deliveries, plan_notice
from app.reports.deliveries.recipients import validate_recipients
from app.reports.deliveries.sender import send_due
from app.reports.deliveries.signing import generate_secret
from app.reports.jobs.models import ReportJob
from app.runtime.resources import Resources
from app.security import mint_token
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.deliveries import (
    CONNECTIONS,
    NOW,
    Mailbox,
    Receiver,
    completed_job,
    delivery_people,
    schedule_body,
)
from tests.helpers.unsafe_inputs import UNSAFE_ADDRESSES, UNSAFE_URLS, stand_in_resolver

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
        assert listed.status_code == 200 and listed.json()["items"] == []


# E-mail addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "code", "reason"), UNSAFE_ADDRESSES)
async def test_unsafe_addresses_are_refused_as_schedule_recipients(
    resources: Resources, value: str, code: str, reason: str
) -> None:
    if code != "domain-not-allowed":  # the shape alone is refused
        with pytest.raises(AddressRefused) as direct:
            normalize_address(value)
        assert direct.value.code == code and reason in str(direct.value)
    with pytest.raises(ValidationFailed) as refused:
        await validate_recipients(["ok@example.org", value], resources.settings)
    errors = refused.value.errors or []
    assert [(e.field, e.type) for e in errors] == [("body.recipients.1", code)]
    assert reason in errors[0].message


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("ann@Example.ORG", "ann@example.org"),
        ("  ann@example.org ", "ann@example.org"),
        ("first.last+reports@example.org", "first.last+reports@example.org"),
        ("ann@sub.example.test", "ann@sub.example.test"),
    ],
)
def test_plain_addresses_are_normalised(value: str, normalized: str) -> None:
    assert normalize_address(value) == normalized


async def test_the_api_names_the_recipient_that_is_refused(
    client: httpx.AsyncClient, auth: Any
) -> None:
    headers = (await delivery_people(auth)).headers
    for value, code, reason in UNSAFE_ADDRESSES:
        body = schedule_body(recipients=["ok@example.org", value])
        response = await client.post(SCHEDULES, json=body, headers=headers)
        assert response.status_code == 422, (value, response.text)
        [error] = response.json()["errors"]
        assert (error["field"], error["type"]) == ("body.recipients.1", code), value
        assert reason in error["message"], value
    assert (await client.get(SCHEDULES, headers=headers)).json()["total"] == 0


async def test_notify_email_trusts_a_claim_only_within_the_recipient_rules(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """A caller the platform does not know gets mail at its token's `email` claim only if the
    claim passes the recipient rules; otherwise the job is refused and nothing is queued."""
    settings = resources.settings

    def caller(email: str) -> dict[str, str]:
        token = mint_token(
            settings, sub=str(PydanticObjectId()), name="Ext", email=email, roles=["admin"]
        )
        return {"Authorization": f"Bearer {token}"}

    body = {**JOB_BODY, "notify": {"email": True}}
    for value, code, reason in UNSAFE_ADDRESSES:
        response = await client.post(JOBS, json=body, headers=caller(value))
        assert response.status_code == 422, (value, response.text)
        [error] = response.json()["errors"]
        assert (error["field"], error["type"]) == ("body.notify.email", code), value
        assert reason in error["message"], value
    assert await ReportJob.find_all().count() == 0

    accepted = await client.post(JOBS, json=body, headers=caller("Ext@Example.ORG"))
    assert accepted.status_code == 202, accepted.text
    job = await ReportJob.get(PydanticObjectId(accepted.json()["id"]))
    assert job and job.delivery
    assert [r.address for r in job.delivery.recipients] == ["Ext@example.org"]


async def test_a_platform_user_is_mailed_at_the_platform_address_whatever_the_domain_list(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    """The domain rule is for addresses typed in: a user's own address, as the platform holds
    it, needs only the shape rules (checked again at send time)."""
    res = delivery_resources
    pat = await f.user("Pat", email="pat@platform-only.example")
    config = await service.on_demand_config(
        res.settings,
        user_id=str(pat.id),
        email="claim@evil.example",
        notify_email=True,
        webhook_url=None,
    )
    assert config and [r.address for r in config.recipients] == ["pat@platform-only.example"]
    await repository.insert_many([_notice(res, config.recipients[0])])
    await send_due(res, worker_id="w1", now=NOW)
    assert [m["To"] for m in smtp_server.messages()] == ["pat@platform-only.example"]


def _notice(res: Resources, recipient: Recipient, subject: str = "Paused") -> ReportDelivery:
    return plan_notice(
        res.settings,
        recipient=recipient,
        subject=subject,
        text="Resume it with POST /api/v1/reports/schedules/{id}/resume.",
        report_name="Monthly progress",
        report_type="learner-progress",
        now=NOW,
    )


async def test_what_is_already_in_the_outbox_is_checked_again_and_fails_for_good(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    """Deliveries planned before these rules (a claim of a caller the platform does not know,
    a list, routing syntax, a line break) are failed at their first attempt with the reason:
    nothing is sent, nothing is retried."""
    res = delivery_resources
    stranger = str(PydanticObjectId())  # a token subject with no platform user
    planned = [
        _notice(res, Recipient(user_id=stranger, address=value)) for value, _, _ in UNSAFE_ADDRESSES
    ]
    # A header that cannot be written (a line break in the subject) is no retry either.
    planned.append(
        _notice(res, Recipient(address="ok@example.org"), "Paused\r\nBcc: e@evil.example")
    )
    await repository.insert_many(planned)
    assert await send_due(res, worker_id="w1", now=NOW, limit=100) == len(planned)
    assert smtp_server.messages() == []
    stored = {d.id: d for d in await ReportDelivery.find_all().to_list()}
    for delivery, (value, _, reason) in zip(
        planned, [*UNSAFE_ADDRESSES, ("", "", "")], strict=True
    ):
        got = stored[delivery.id]
        assert (got.status, got.attempts) == (DeliveryStatus.FAILED, 1), value
        assert got.last_error and reason in got.last_error, (value, got.last_error)
    assert "the message cannot be built" in (stored[planned[-1].id].last_error or "")
    assert "recipient refused" in (stored[planned[0].id].last_error or "")


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
    config = DeliveryConfig(webhook_endpoint_ids=[endpoint.id])

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
