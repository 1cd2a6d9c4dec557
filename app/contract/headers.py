"""The response headers in the contract that every operation of a kind sends: X-Request-ID on
every answer, Retry-After on every 429 and 503 (and on the 409 of an Idempotency-Key still in
use), Location on every redirect. The headers one route sends (a Location, an ETag) are
declared on the route (`app.common.http.with_headers`)."""

from __future__ import annotations

from typing import Any

from app.common.http import RESPONSE_HEADERS

IN_USE = {
    **RESPONSE_HEADERS["Retry-After"],
    "description": "With `idempotency-key-in-use`: seconds until the first request with this "
    "Idempotency-Key should have finished",
}


def _takes_idempotency_key(operation: dict[str, Any]) -> bool:
    return any(
        p.get("in") == "header" and p.get("name") == "Idempotency-Key"
        for p in operation.get("parameters", [])
    )


def document_headers(openapi: dict[str, Any]) -> None:
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            idempotent = _takes_idempotency_key(operation)
            for status, response in operation.get("responses", {}).items():
                headers: dict[str, Any] = dict(response.get("headers", {}))
                if status.startswith("3"):
                    headers.setdefault("Location", RESPONSE_HEADERS["Location"])
                if status in ("429", "503"):
                    headers.setdefault("Retry-After", RESPONSE_HEADERS["Retry-After"])
                if status == "409" and idempotent:
                    headers.setdefault("Retry-After", IN_USE)
                headers.setdefault("X-Request-ID", RESPONSE_HEADERS["X-Request-ID"])
                response["headers"] = headers
