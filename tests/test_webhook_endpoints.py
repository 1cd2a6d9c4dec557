"""Deleting a webhook endpoint: refused (409 naming them) while schedules call it, else gone
with its waiting deliveries cancelled, and audited."""

from __future__ import annotations

import httpx

from app.audit.models import AuditEvent
from app.reports.deliveries.models import WebhookEndpoint
from tests.helpers.deliveries import Receiver, delivery_people, schedule_body
from tests.helpers.tokens import TokenFactory

WEBHOOKS = "/api/v1/reports/webhooks"
SCHEDULES = "/api/v1/reports/schedules"


async def test_an_endpoint_a_schedule_calls_is_kept_until_the_schedule_lets_go(
    delivery_client: httpx.AsyncClient, auth: TokenFactory, http_receiver: Receiver
) -> None:
    headers = (await delivery_people(auth)).headers
    created = await delivery_client.post(
        SCHEDULES, json=schedule_body(webhooks=[{"url": http_receiver.url()}]), headers=headers
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    [hook] = schedule["webhooks"]

    refused = await delivery_client.delete(f"{WEBHOOKS}/{hook['id']}", headers=headers)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "webhook-in-use"
    assert problem["schedules"] == [
        {
            "id": schedule["id"],
            "name": "Weekly progress",
            "status": "active",
            "templateVersion": None,
        }
    ]
    assert "'Weekly progress'" in problem["detail"]
    assert await WebhookEndpoint.get(hook["id"]) is not None

    # The schedule drops the endpoint: now it can go.
    dropped = await delivery_client.patch(
        f"{SCHEDULES}/{schedule['id']}", json={"webhooks": []}, headers=headers
    )
    assert dropped.status_code == 200, dropped.text
    deleted = await delivery_client.delete(f"{WEBHOOKS}/{hook['id']}", headers=headers)
    assert deleted.status_code == 204
    listed = await delivery_client.get(WEBHOOKS, headers=headers)
    assert hook["id"] not in [w["id"] for w in listed.json()["items"]]
    again = await delivery_client.delete(f"{WEBHOOKS}/{hook['id']}", headers=headers)
    assert again.status_code == 404 and again.json()["code"] == "webhook-not-found"
    actions = [e.action for e in await AuditEvent.find_all().sort("created_at").to_list()]
    assert actions.count("webhook.deleted") == 1


async def test_only_the_owner_or_an_admin_deletes_an_endpoint(
    delivery_client: httpx.AsyncClient, auth: TokenFactory, http_receiver: Receiver
) -> None:
    people = await delivery_people(auth)
    hook = await delivery_client.post(
        WEBHOOKS, json={"url": http_receiver.url()}, headers=people.headers
    )
    assert hook.status_code == 201, hook.text
    stranger = auth("manager", sub=str(people.ben.id))
    other = await delivery_client.delete(f"{WEBHOOKS}/{hook.json()['id']}", headers=stranger)
    assert other.status_code == 404  # another user's endpoint is not even named
    own = await delivery_client.delete(f"{WEBHOOKS}/{hook.json()['id']}", headers=people.headers)
    assert own.status_code == 204
