"""Outbound HTTP to addresses users typed in (webhooks) must not reach our own network.

`check_url` checks the URL's shape; `resolve_destination` resolves its host and refuses
loopback, private, link-local (cloud metadata at 169.254.169.254), unspecified, multicast and
every other non-global address unless an allow-list network contains it. The sender calls
`resolve_destination` again right before each request and connects to the address it checked
(not to the name), so a DNS answer that changes between the check and the request (DNS
rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeDestination(ValueError):
    """The URL is malformed or its host resolves to an address we refuse to call."""


@dataclass(frozen=True)
class Destination:
    """A checked URL and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"

    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name (the name goes into the
        Host header and, for https, the TLS server name)."""
        parts = urlsplit(self.url)
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return parts._replace(netloc=f"{host}:{self.port}").geturl()


def parse_networks(text: str) -> list[IPNetwork]:
    """`"127.0.0.1/32, ::1"` -> networks; a bad entry raises ValueError naming it."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network") from exc
    return networks


def check_url(url: str, *, require_https: bool) -> SplitResult:
    """The URL's shape: http(s), a host, no credentials inside it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"not a valid URL: {exc}") from None
    allowed = ("https",) if require_https else ("https", "http")
    if parts.scheme not in allowed:
        raise UnsafeDestination(f"the scheme must be {' or '.join(allowed)}")
    if not parts.hostname:
        raise UnsafeDestination("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("credentials inside the URL are not allowed")
    if port == 0:
        raise UnsafeDestination("port 0 is not a valid port")
    return parts


def refusal(address: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """Why `address` may not be called, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if any(address in network for network in allowed):
        return None
    if address.is_global and not address.is_multicast:
        return None
    kind = (
        "loopback"
        if address.is_loopback
        else "link-local (cloud metadata)"
        if address.is_link_local
        else "unspecified"
        if address.is_unspecified
        else "multicast"
        if address.is_multicast
        else "private"
        if address.is_private
        else "non-public"
    )
    return f"{address} is a {kind} address"


async def resolve_destination(
    url: str, *, allowed: Sequence[IPNetwork], require_https: bool
) -> Destination:
    """Checks the URL, resolves its host and returns the first address; raises
    UnsafeDestination when any resolved address is refused (a name with one private address
    among public ones is refused too: we cannot choose which one a client would use)."""
    parts = check_url(url, require_https=require_https)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _literal(host) or await _resolve(host, port)
    for address in addresses:
        reason = refusal(address, allowed)
        if reason:
            raise UnsafeDestination(f"the host {host!r} resolves to {reason}")
    return Destination(url=url, scheme=parts.scheme, host=host, port=port, address=addresses[0])


def _literal(host: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        return []


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeDestination(f"the host {host!r} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeDestination(f"the host {host!r} does not resolve")
    return addresses
