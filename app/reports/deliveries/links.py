"""Signed, expiring, per-recipient delivery links.

A token is `<payload>.<signature>`, both base64url without padding: the payload is compact JSON
`{"d": delivery id, "r": recipient key, "e": expiry (Unix seconds)}`, the signature an
HMAC-SHA256 of the payload with DELIVERY_LINK_SECRET (or JWT_SECRET, under its own label so a
link can never pass for a token of another kind). The token names a delivery, never a storage
key or a storage credential: the download endpoint looks the delivery up, checks that it is not
revoked (schedule paused or deleted) and that its file still exists, then streams the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from app.common.time import utcnow
from app.config import Settings

_LABEL = b"report-delivery-link:v1:"


class LinkError(ValueError):
    """The token is malformed, badly signed or expired; `reason` is machine-readable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    delivery_id: str
    recipient: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings: Settings, payload: bytes) -> bytes:
    key = (settings.delivery_link_secret or settings.jwt_secret).encode()
    return hmac.new(key, _LABEL + payload, hashlib.sha256).digest()


def issue_link_token(
    settings: Settings, *, delivery_id: str, recipient: str, expires_at: datetime
) -> str:
    payload = json.dumps(
        {"d": delivery_id, "r": recipient, "e": int(expires_at.timestamp())},
        separators=(",", ":"),
    ).encode()
    return f"{_b64(payload)}.{_b64(_mac(settings, payload))}"


def verify_link_token(
    settings: Settings, token: str, *, now: datetime | None = None, expired_ok: bool = False
) -> LinkClaims:
    """The claims of a valid token; LinkError("malformed" | "bad-signature" | "expired"). With
    `expired_ok` an expired token's claims are returned (what it named, not access to it)."""
    try:
        head, sig = token.split(".")
        payload, signature = _unb64(head), _unb64(sig)
    except (ValueError, binascii.Error):
        raise LinkError("malformed", "This is not a delivery link.") from None
    if not hmac.compare_digest(signature, _mac(settings, payload)):
        raise LinkError("bad-signature", "This delivery link is not valid.")
    try:
        data = json.loads(payload)
        claims = LinkClaims(
            delivery_id=str(data["d"]),
            recipient=str(data["r"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), tz=UTC),
        )
    except (ValueError, KeyError, TypeError):
        raise LinkError("malformed", "This is not a delivery link.") from None
    if not expired_ok and claims.expires_at <= (now or utcnow()):
        raise LinkError("expired", "This delivery link has expired.")
    return claims


def link_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/api/v1/reports/deliveries/{token}"
