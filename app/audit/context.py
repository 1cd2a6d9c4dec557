"""What the audit trail knows about the request being served: set once per request by
`AuditMiddleware`, read by `record` (so an action's hook names only the action and its object)."""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from app.common.redaction import redact_path
from app.common.ssrf import IPNetwork, parse_networks
from app.config import Settings

Network = IPNetwork


@dataclass(frozen=True)
class RequestInfo:
    settings: Settings
    state: dict[str, Any]  # the request's state: request id, principal (set by the auth check)
    client_address: str | None
    method: str
    path: str

    @property
    def request_id(self) -> str | None:
        value = self.state.get("request_id")
        return value if isinstance(value, str) else None


current_request: ContextVar[RequestInfo | None] = ContextVar("audit_request", default=None)


def trusted_networks(text: str) -> tuple[Network, ...]:
    """`TRUSTED_PROXIES` ("10.0.0.0/8, 127.0.0.1") as networks (ValueError naming a bad one)."""
    try:
        return tuple(parse_networks(text))
    except ValueError as exc:
        raise ValueError(f"TRUSTED_PROXIES: {exc}") from exc


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(scope: Scope, networks: tuple[Network, ...]) -> str | None:
    """The peer's address; when the peer is a trusted proxy, the right-most X-Forwarded-For
    entry that is not itself a trusted proxy (entries left of it could be forged by the client)."""
    client = scope.get("client")
    peer = client[0] if client else None
    if peer is None or not _trusted(peer, networks):
        return peer
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers") or []
        if name == b"x-forwarded-for"
    ]
    hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def request_info(scope: Scope, settings: Settings, networks: tuple[Network, ...]) -> RequestInfo:
    return RequestInfo(
        settings=settings,
        state=scope.setdefault("state", {}),
        client_address=client_address(scope, networks),
        method=str(scope.get("method", "")),
        path=redact_path(str(scope.get("path", ""))),
    )
