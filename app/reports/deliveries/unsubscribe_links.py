"""Signed per-recipient unsubscribe links (RFC 8058 one-click, and the visible link).

A token is `<payload>.<signature>` as a delivery link's (`links.py`), under its own label so
neither can pass for the other: the payload is compact JSON `{"s": schedule id, "r": recipient
key, "l": locale}` (`Recipient.key()`: `user:<id>` or `email:<address>`; the locale the pages
behind the link speak, the message's). It does not expire: an old
message's unsubscribe link must still work. The signature is the credential: whoever holds
the message may take its recipient off the schedule, and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from app.config import Settings
from app.reports.deliveries.models import ReportDelivery

_LABEL = b"report-unsubscribe:v1:"
PATH = "/api/v1/reports/unsubscribe"


class UnsubscribeLinkError(ValueError):
    """Not a token this service signed (mistyped, cut off or tampered with)."""


@dataclass(frozen=True)
class UnsubscribeClaims:
    schedule_id: str
    recipient: str  # Recipient.key()
    locale: str = "en"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings: Settings, payload: bytes) -> bytes:
    key = (settings.delivery_link_secret or settings.jwt_secret).encode()
    return hmac.new(key, _LABEL + payload, hashlib.sha256).digest()


def issue_unsubscribe_token(
    settings: Settings, *, schedule_id: str, recipient: str, locale: str = "en"
) -> str:
    payload = json.dumps(
        {"s": schedule_id, "r": recipient, "l": locale}, separators=(",", ":")
    ).encode()
    return f"{_b64(payload)}.{_b64(_mac(settings, payload))}"


def verify_unsubscribe_token(settings: Settings, token: str) -> UnsubscribeClaims:
    try:
        head, sig = token.split(".")
        payload, signature = _unb64(head), _unb64(sig)
    except (ValueError, binascii.Error):
        raise UnsubscribeLinkError("not an unsubscribe link") from None
    if not hmac.compare_digest(signature, _mac(settings, payload)):
        raise UnsubscribeLinkError("not an unsubscribe link")
    try:
        data = json.loads(payload)
        return UnsubscribeClaims(
            schedule_id=str(data["s"]), recipient=str(data["r"]), locale=str(data.get("l", "en"))
        )
    except (ValueError, KeyError, TypeError):
        raise UnsubscribeLinkError("not an unsubscribe link") from None


def unsubscribe_url(settings: Settings, delivery: ReportDelivery) -> str | None:
    """The delivery's unsubscribe URL: e-mails of a schedule's run to its recipients (not an
    owner's notices about their own schedule, not on-demand jobs someone asked to be sent)."""
    if not delivery.content.unsubscribe or delivery.schedule_id is None:
        return None
    if delivery.recipient.address is None:
        return None
    token = issue_unsubscribe_token(
        settings,
        schedule_id=str(delivery.schedule_id),
        recipient=delivery.recipient.key(),
        locale=delivery.content.locale,
    )
    return f"{settings.public_base_url.rstrip('/')}{PATH}/{token}"
