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

# The request-state key under which a 404 names the hidden object it is answered for.
HIDDEN_OBJECT = "audit_hidden_object"


def note_hidden(object_type: str, object_id: object) -> None:
    """Called by a service about to answer 404 for an object that exists but that the caller may
    not see (another user's): `AuditMiddleware` records the probe once the 404 is sent
    (app/audit/probes.py). The answer itself stays the one for an id that does not exist."""
    info = current_request.get()
    if info is not None:
        info.state[HIDDEN_OBJECT] = (object_type, str(object_id))


def trusted_networks(text: str) -> tuple[Network, ...]:
    """`TRUSTED_PROXIES` ("10.0.0.0/8, 127.0.0.1") as networks (ValueError naming a bad one)."""
    try:
        return tuple(parse_networks(text))
    except ValueError as exc:
        raise ValueError(f"TRUSTED_PROXIES: {exc}") from exc


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The longest entry that can be an address: "[" + 45 characters of IPv6 + "]:65535".
_MAX_HOP_CHARS = 53


def parse_address(text: str) -> IPAddress | None:
    """An address as a peer or an X-Forwarded-For entry gives it (`192.0.2.1`, `192.0.2.1:80`,
    `2001:db8::1`, `[2001:db8::1]:443`), or None for anything else: names, `unknown`, IPv6 zone
    ids, markup, over-long text."""
    text = text.strip()
    if not text or len(text) > _MAX_HOP_CHARS:
        return None
    port = ""
    if text.startswith("["):
        text, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else ""
        if rest and not port:
            return None
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not port:
            return None
    if port and not (port.isascii() and port.isdigit()):
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        return None
    return ip


def _trusted(ip: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(ip in net for net in networks)


def client_address(scope: Scope, networks: tuple[Network, ...]) -> str | None:
    """The peer's address; when the peer is a trusted proxy, the right-most X-Forwarded-For
    entry that is not itself a trusted proxy (entries left of it could be forged by the client).
    Only IP addresses are believed: when that entry is anything else, the peer's address is
    used; a peer that is not an IP address (a test client, a socket path) gives None."""
    client = scope.get("client")
    peer = parse_address(str(client[0])) if client else None
    if peer is None or not _trusted(peer, networks):
        return str(peer) if peer else None
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers") or []
        if name == b"x-forwarded-for"
    ]
    hops = [h for h in ",".join(forwarded).split(",") if h.strip()]
    for hop in reversed(hops):
        ip = parse_address(hop)
        if ip is None:
            return str(peer)  # not an address: nothing from here on can be believed
        if not _trusted(ip, networks):
            return str(ip)
    first = parse_address(hops[0]) if hops else None
    return str(first or peer)


def request_info(scope: Scope, settings: Settings, networks: tuple[Network, ...]) -> RequestInfo:
    return RequestInfo(
        settings=settings,
        state=scope.setdefault("state", {}),
        client_address=client_address(scope, networks),
        method=str(scope.get("method", "")),
        path=redact_path(str(scope.get("path", ""))),
    )
