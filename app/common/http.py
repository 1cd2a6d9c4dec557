"""Request parts shared by several endpoints: the Idempotency-Key header and the request id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description=(
            "Same key and request within 24 h returns the same job (200, "
            "`Idempotent-Replayed: true`); the same key with another request is a 409"
        ),
    ),
]


def read_request_id(request: Request) -> str | None:
    """The id the request-id middleware gave this request (echoed in X-Request-ID)."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


RequestId = Annotated[str | None, Depends(read_request_id)]
