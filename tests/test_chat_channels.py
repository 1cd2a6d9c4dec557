"""Slack and Microsoft Teams channels: a schedule's incoming-webhook URLs get a channel message
through the same outbox as e-mail and webhooks, the URL is never shown in full, and the
messages have the shapes the two services document (Block Kit, checked by Slack's SDK; an
Adaptive Card, parsed by Microsoft's own library)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
from slack_sdk.models.blocks import Block

from app.reports.deliveries import repository
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryConfig,
    DeliveryKind,
    DeliveryStatus,
    EmptyResultPolicy,
    EndpointKind,
    WebhookEndpoint,
)
from app.reports.deliveries.planning import plan_deliveries
from app.reports.deliveries.sender import send_due
from app.reports.deliveries.signing import generate_secret
from app.reports.rendering import ColumnType, Figure
from app.runtime.resources import Resources
from tests.helpers.deliveries import (
    NOW,
    Receiver,
    completed_job,
    delivery_people,
    schedule_body,
)
from tests.helpers.tokens import TokenFactory

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / ".tools" / "node"
RATE = "Completed ÷ (enrolled − withdrawn), as a percentage"
FIGURES = [
    Figure("learners", "Learners", 42, ColumnType.INTEGER, "Distinct learners"),
    Figure("completionRate", "Completion rate", 73.5, ColumnType.PERCENT, RATE),
]


SCHEDULES = "/api/v1/reports/schedules"


async def _endpoints(receiver: Receiver) -> dict[EndpointKind, WebhookEndpoint]:
    made = {}
    for kind in EndpointKind:
        made[kind] = await repository.create_endpoint(
            owner_user_id="owner-1",
            url=receiver.url(f"/{kind.value}/T000/B000/secret-part-{kind.value}"),
            secret=None if kind.chat else generate_secret(),
            kind=kind,
        )
    return made


async def _deliver(res: Resources, endpoints: list[WebhookEndpoint], *, rows: int = 1) -> list[Any]:
    job = await completed_job(res, rows=rows)
    config = DeliveryConfig(
        empty_result=EmptyResultPolicy.NOTICE,
        webhook_endpoint_ids=[e.id for e in endpoints if e.id],
    )
    planned = plan_deliveries(
        job, config, endpoints, res.settings, report_name="Monthly progress",
        figures=FIGURES, now=NOW,
    )  # fmt: skip
    await repository.insert_many(planned)
    assert await send_due(res, worker_id="w1", now=NOW) == len(planned)
    return planned


def _adaptive_card_problems(card: dict[str, Any], tmp_path: Path) -> list[str]:
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    out = subprocess.run(
        ["node", str(ROOT / "tests" / "clients" / "adaptive_card.js"), str(path)],
        env={"NODE_PATH": str(NODE / "node_modules"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    problems: list[str] = json.loads(out.stdout)
    return problems


async def test_slack_and_teams_get_a_channel_message_each_and_the_webhook_its_signed_call(
    delivery_resources: Resources, http_receiver: Receiver, tmp_path: Path
) -> None:
    res = delivery_resources
    endpoints = await _endpoints(http_receiver)
    planned = await _deliver(res, list(endpoints.values()))
    assert sorted(d.channel for d in planned) == sorted(
        [DeliveryChannel.WEBHOOK, DeliveryChannel.SLACK, DeliveryChannel.TEAMS]
    )
    calls = {r.path.split("/")[1]: r for r in http_receiver.requests}
    assert sorted(calls) == ["slack", "teams", "webhook"]
    assert "webhook-signature" in calls["webhook"].headers
    for name in ("slack", "teams"):  # the URL is the secret: nothing is signed
        assert "webhook-signature" not in calls[name].headers
        assert calls[name].headers["content-type"] == "application/json"

    slack = json.loads(calls["slack"].body)
    assert slack["text"] == "Report: Monthly progress"
    for block in slack["blocks"]:
        Block.parse(block).validate_json()  # type: ignore[union-attr]  # raises on a bad block
    types = [b["type"] for b in slack["blocks"]]
    assert types == ["header", "section", "section", "actions", "context"]
    assert "Period: 2026-11-01 – 2026-11-30 (Europe/Berlin)" in slack["blocks"][1]["text"]["text"]
    fields = [f["text"] for f in slack["blocks"][2]["fields"]]
    assert fields == ["*Learners*\n42", "*Completion rate*\n73.5%"]
    button = slack["blocks"][3]["elements"][0]
    assert button["url"].startswith("https://reports.example/api/v1/reports/deliveries/")
    assert "expires on" in slack["blocks"][4]["elements"][0]["text"]

    teams = json.loads(calls["teams"].body)
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert _adaptive_card_problems(card, tmp_path) == []
    texts = [b.get("text", "") for b in card["body"]]
    assert texts[0] == "Report: Monthly progress"
    assert any("Period: 2026-11-01 – 2026-11-30" in t for t in texts)
    facts = next(b for b in card["body"] if b["type"] == "FactSet")["facts"]
    assert facts == [
        {"title": "Learners", "value": "42"},
        {"title": "Completion rate", "value": "73.5%"},
    ]
    [action] = card["actions"]
    assert action["type"] == "Action.OpenUrl"
    assert action["url"].startswith("https://reports.example/api/v1/reports/deliveries/")
    assert action["url"] != button["url"]  # a link per recipient (here: per endpoint)

    stored = [await repository.get(d.id) for d in planned]
    assert {d.status for d in stored if d} == {DeliveryStatus.SENT}


async def test_an_empty_run_notice_reaches_the_channels_without_a_button(
    delivery_resources: Resources, http_receiver: Receiver, tmp_path: Path
) -> None:
    endpoints = await _endpoints(http_receiver)
    chat = [endpoints[EndpointKind.SLACK], endpoints[EndpointKind.TEAMS]]
    planned = await _deliver(delivery_resources, chat, rows=0)
    assert {d.kind for d in planned} == {DeliveryKind.NOTICE}
    calls = {r.path.split("/")[1]: json.loads(r.body) for r in http_receiver.requests}
    slack_blocks = calls["slack"]["blocks"]
    assert [b["type"] for b in slack_blocks] == ["header", "section"]
    assert "found no rows" in slack_blocks[1]["text"]["text"]
    card = calls["teams"]["attachments"][0]["content"]
    assert "actions" not in card and _adaptive_card_problems(card, tmp_path) == []
    assert any("found no rows" in b.get("text", "") for b in card["body"])


async def test_a_bad_card_is_caught_by_the_checker(tmp_path: Path) -> None:
    # The checker itself: a missing URL and an unknown element are reported.
    card = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "Bogus"}],
        "actions": [{"type": "Action.OpenUrl", "title": "x"}],
    }
    problems = _adaptive_card_problems(card, tmp_path)
    assert any("Bogus" in p for p in problems) and any('"url"' in p for p in problems)


async def test_a_schedule_takes_slack_and_teams_urls_and_never_shows_them_in_full(
    delivery_client: httpx.AsyncClient, auth: TokenFactory, http_receiver: Receiver
) -> None:
    headers = (await delivery_people(auth)).headers
    slack_url = http_receiver.url("/services/T000/B000/XXXXsecretXXXX9f3a")
    hooks = [{"url": slack_url, "kind": "slack"}, {"url": http_receiver.url(), "kind": "teams"}]
    created = await delivery_client.post(
        SCHEDULES, json=schedule_body(webhooks=hooks), headers=headers
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    slack, teams = schedule["webhooks"]
    assert (slack["kind"], teams["kind"]) == ("slack", "teams")
    assert slack["url"] == "http://127.0.0.1/…9f3a" and "XXXXsecretXXXX" not in created.text
    assert slack["secret"] is None and teams["secret"] is None  # nothing to sign with
    listed = await delivery_client.get("/api/v1/reports/webhooks", headers=headers)
    assert "XXXXsecretXXXX" not in listed.text

    # The same URLs sent again keep their endpoints; the signing secret cannot be rotated.
    kept = await delivery_client.patch(
        f"{SCHEDULES}/{schedule['id']}", json={"webhooks": hooks}, headers=headers
    )
    assert [w["id"] for w in kept.json()["webhooks"]] == [slack["id"], teams["id"]]
    rotate = await delivery_client.post(
        f"/api/v1/reports/webhooks/{slack['id']}/rotate", headers=headers
    )
    assert rotate.status_code == 409 and rotate.json()["code"] == "webhook-unsigned"

    # An unknown kind is refused, naming the field.
    bad = await delivery_client.post(
        SCHEDULES,
        json=schedule_body(webhooks=[{"url": slack_url, "kind": "discord"}]),
        headers=headers,
    )
    assert bad.status_code == 422
    assert any(e["field"].endswith("webhooks.0.kind") for e in bad.json()["errors"])
