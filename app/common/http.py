"""HTTP parts shared by several endpoints: the Idempotency-Key header, the request id and a
safe Content-Disposition."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Header

from app.errors import read_request_id

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


RequestId = Annotated[str | None, Depends(read_request_id)]


def content_disposition(file_name: str) -> str:
    """A header value that cannot be used for header injection: an ASCII fallback plus the
    RFC 5987 UTF-8 name."""
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in file_name
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name, safe='')}"
