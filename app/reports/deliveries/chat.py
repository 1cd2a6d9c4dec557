"""The Slack and Microsoft Teams channels: one message to an incoming-webhook URL.

An incoming-webhook URL is its own credential (whoever has it can post to the channel), so it is
stored like a secret: every answer and log shows it redacted (`redact_url`). The message says
what the e-mail says, shortened to what a channel reader takes in at a glance: the report's
title, its period, the row count and the key figures, and a button to the delivery link with
its expiry. Slack gets Block Kit (`slack_message`), Teams an Adaptive Card 1.4 in a message
attachment (`teams_message`), the shape both Teams' incoming webhooks and its Workflows accept.
The HTTP call itself (SSRF-checked at send time, no redirects) is the webhook channel's.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from app.common.time import as_utc, zone
from app.i18n import human_formats, translate
from app.reports.deliveries.change_text import CHAT_LINES, change_lines
from app.reports.deliveries.email import period_text
from app.reports.deliveries.models import DeliveryKind, ReportDelivery

USER_AGENT = "report-system-chat/1"
SLACK_HEADER_CHARS = 150  # Block Kit limits
SLACK_FIELDS = 10
SLACK_TEXT_CHARS = 3000
TEAMS_FACTS = 12
KEEP_CHARS = 4  # the end of a redacted URL, to tell two apart


def redact_url(url: str) -> str:
    """`https://hooks.slack.com/services/T0/B0/abcd1234` → `https://hooks.slack.com/…1234`:
    enough to recognise an endpoint, never enough to post to it."""
    parts = urlsplit(url)
    tail = url[-KEEP_CHARS:] if len(url) > KEEP_CHARS * 4 else ""
    return f"{parts.scheme}://{parts.hostname or ''}/…{tail}"


def _expiry(delivery: ReportDelivery) -> str | None:
    expires: datetime | None = delivery.link_expires_at
    if expires is None:
        return None
    content = delivery.content
    formats = human_formats(content.locale)
    try:
        local = formats.datetime(as_utc(expires).astimezone(zone(content.timezone)))
        when = f"{local} ({content.timezone})"
    except ValueError:
        when = f"{formats.datetime(as_utc(expires))} (UTC)"
    return translate(
        content.locale, "The link is for this channel's members only and expires on {when}."
    ).format(when=when)


def _summary_lines(delivery: ReportDelivery) -> list[str]:
    """The period and the row count, or a notice's text."""
    content = delivery.content
    if delivery.kind == DeliveryKind.NOTICE:
        return [content.text or ""]
    lines = change_lines(content, CHAT_LINES)  # a change report: what changed, first
    period = period_text(content)
    if period:
        lines.append(translate(content.locale, "Period: {period}").format(period=period))
    if content.row_count is not None:
        rows = human_formats(content.locale).integer(content.row_count)
        lines.append(translate(content.locale, "Rows: {rows}").format(rows=rows))
    return lines


def _title(delivery: ReportDelivery) -> str:
    content = delivery.content
    if delivery.kind == DeliveryKind.NOTICE:
        return content.subject or content.report_name
    return translate(content.locale, "Report: {report}").format(report=content.report_name)


def _mrkdwn(text: str) -> str:
    """Slack's three control characters escaped, as its formatting guide asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(delivery: ReportDelivery, link: str | None) -> dict[str, Any]:
    """A Block Kit message: header, period and rows, the figures as fields, the download
    button, the link's expiry; `text` is the notification's fallback."""
    content = delivery.content
    title = _title(delivery)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:SLACK_HEADER_CHARS]}}
    ]
    summary = "\n".join(_mrkdwn(line) for line in _summary_lines(delivery) if line)
    if summary:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": summary[:SLACK_TEXT_CHARS]}}
        )
    figures = content.figures[:SLACK_FIELDS] if delivery.kind == DeliveryKind.REPORT else []
    if figures:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{_mrkdwn(f.label)}*\n{_mrkdwn(f.value)}"}
                    for f in figures
                ],
            }
        )
    if link:
        button = {
            "type": "button",
            "text": {
                "type": "plain_text",
                "text": translate(content.locale, "Download the report")[:75],
            },
            "url": link,
            "style": "primary",
        }
        blocks.append({"type": "actions", "elements": [button]})
        expiry = _expiry(delivery)
        if expiry:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": expiry}]})
    return {"text": title, "blocks": blocks}


def teams_message(delivery: ReportDelivery, link: str | None) -> dict[str, Any]:
    """An Adaptive Card (1.4) in a message attachment: title, period and rows, the figures
    as a fact set, the expiry, an Open URL action to the download."""
    content = delivery.content
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": _title(delivery),
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "style": "heading",
        }
    ]
    body += [
        {"type": "TextBlock", "text": line, "wrap": True, "spacing": "Small"}
        for line in _summary_lines(delivery)
        if line
    ]
    figures = content.figures[:TEAMS_FACTS] if delivery.kind == DeliveryKind.REPORT else []
    if figures:
        body.append({"type": "FactSet", "facts": [{"title": f.label, "value": f.value}
                                                  for f in figures]})  # fmt: skip
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "lang": content.locale,
        "body": body,
    }
    if link:
        expiry = _expiry(delivery)
        if expiry:
            body.append(
                {"type": "TextBlock", "text": expiry, "wrap": True, "isSubtle": True,
                 "size": "Small"}
            )  # fmt: skip
        card["actions"] = [
            {
                "type": "Action.OpenUrl",
                "title": translate(content.locale, "Download the report"),
                "url": link,
            }
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def body(delivery: ReportDelivery, link: str | None, *, teams: bool) -> bytes:
    message = teams_message(delivery, link) if teams else slack_message(delivery, link)
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
