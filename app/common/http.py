"""HTTP parts shared by several endpoints: the Idempotency-Key header, the request id, a safe
Content-Disposition, and the response headers a client reads (as the contract documents
them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any
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


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "schema": schema}


RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "Location": _header(
        "Where the created or accepted resource is (a job: poll it)", {"type": "string"}
    ),
    "ETag": _header(
        'The template\'s version, e.g. `"3"`: send it back as `If-Match` with a change',
        {"type": "string"},
    ),
    "Retry-After": _header("Seconds to wait before trying again", {"type": "integer"}),
    "Idempotent-Replayed": _header(
        "`true`: an earlier request with the same Idempotency-Key is answered again",
        {"type": "string", "enum": ["true"]},
    ),
    "X-Request-ID": _header(
        "The request's id (the one you sent in X-Request-ID when it is sane): it is in the "
        "logs and in every problem's `requestId`",
        {"type": "string"},
    ),
}


def with_headers(
    headers: Mapping[int, Sequence[str]],
    responses: Mapping[int | str, dict[str, Any]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """`responses` (a route's OpenAPI responses) with the named response headers documented on
    the given statuses: `with_headers({201: ["Location"]}, problem_responses(401))`."""
    merged: dict[int | str, dict[str, Any]] = dict(responses or {})
    for status, names in headers.items():
        entry = dict(merged.get(status, {}))
        entry["headers"] = {**entry.get("headers", {}), **{n: RESPONSE_HEADERS[n] for n in names}}
        merged[status] = entry
    return merged
