"""Standard Webhooks signatures (https://www.standardwebhooks.com/) and endpoint secrets.

Each call carries `webhook-id` (stable across retries), `webhook-timestamp` (Unix seconds) and
`webhook-signature`: space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per
secret that signs now (two during a rotation's overlap window). A secret is `whsec_` followed by
the base64 of its key bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from app.common.time import utcnow

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = timedelta(minutes=5)


class SignatureError(ValueError):
    """The call is not signed by any of the secrets, or its timestamp is too far off."""


def generate_secret() -> str:
    """A new endpoint secret: 32 random bytes. Shown to its owner once."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<signature>` for one secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_headers(
    secrets_: Sequence[str], msg_id: str, body: bytes, *, now: datetime | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every given secret."""
    if not secrets_:
        raise ValueError("an endpoint without a signing secret cannot be called")
    timestamp = int((now or utcnow()).timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets_),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> str:
    """What a receiver does: returns the webhook id when one of the signatures in the header is
    ours and the timestamp is within `tolerance` (replays are refused); else SignatureError."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    header = lower.get("webhook-signature")
    if not msg_id or not stamp or not header:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    current = (now or utcnow()).timestamp()
    if abs(current - timestamp) > tolerance.total_seconds():
        raise SignatureError("webhook-timestamp is too old or in the future")
    expected = sign(secret, msg_id, timestamp, body)
    for candidate in header.split():
        if hmac.compare_digest(candidate, expected):
            return msg_id
    raise SignatureError("no signature matches the secret")
