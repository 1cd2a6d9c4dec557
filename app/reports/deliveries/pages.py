"""The short HTML page a person gets who opens a delivery link that no longer works in a
browser: what happened and whom to ask (an API client gets the problem+json)."""

from __future__ import annotations

from html import escape
from typing import Any

from app.reports.deliveries.service import LinkContact

# code -> (heading, what happened)
_SAID = {
    "delivery-link-expired": (
        "This link has expired",
        "Links to a report work for a limited time after it is sent, and this one's time is over.",
    ),
    "delivery-link-revoked": (
        "This link no longer works",
        "The report's schedule was paused or deleted, so the links it sent were withdrawn.",
    ),
    "job-file-missing": (
        "This report is no longer available",
        "Its file was removed when its retention period ended.",
    ),
    "delivery-link-invalid": (
        "This link does not work",
        "It is not a link to a report, or it is incomplete: mail programs sometimes cut long "
        "links. Copy the whole link from the message and try again.",
    ),
}


def wants_html(accept: str | None) -> bool:
    """Whether the caller prefers an HTML page (a browser) to JSON: `text/html` is in Accept
    with a quality at least that of any JSON type."""
    html, json = 0.0, 0.0
    for part in (accept or "").lower().split(","):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media.strip() in ("text/html", "application/xhtml+xml"):
            html = max(html, quality)
        elif media.strip().endswith("json"):
            json = max(json, quality)
    return html > 0 and html >= json


def _whom(contact: LinkContact | None) -> str:
    if contact is None:
        return "Ask the person or team who sent you the link to send the report again."
    who = escape(contact.name)
    if contact.email:
        address = escape(contact.email)
        who = f'{who} (<a href="mailto:{address}">{address}</a>)'
    return f"Ask {who}, who set up this report, to send it again."


def link_problem_page(code: str, contact: LinkContact | None, request_id: str | None) -> str:
    heading, said = _SAID.get(code, _SAID["delivery-link-invalid"])
    reference = f"<p class=ref>Reference: {escape(request_id)}</p>" if request_id else ""
    return f"""<!doctype html>
<html lang=en>
<meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<meta name=robots content=noindex>
<title>{heading}</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 4rem auto;
          padding: 0 1rem; color: #1f2328; }}
  h1 {{ font-size: 1.4rem; }}
  .ref {{ color: #59636e; font-size: .85rem; }}
</style>
<h1>{heading}</h1>
<p>{said}</p>
<p>{_whom(contact)}</p>
{reference}
</html>
"""


def with_page(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The error responses of the link endpoint, each also as the HTML page (in the contract)."""
    example = link_problem_page("delivery-link-expired", LinkContact("Maria Keller", None), None)
    page = {"text/html": {"schema": {"type": "string"}, "example": example}}
    return {
        status: {**response, "content": {**response.get("content", {}), **page}}
        for status, response in responses.items()
    }
