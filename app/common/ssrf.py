"""Outbound HTTP to addresses users typed in (webhooks) must not reach our own network.

`check_url` checks the URL's shape and its host's spelling; `resolve_destination` resolves the
host and refuses it unless **every** address it resolves to is a public unicast address
(`classify`): loopback, private, shared, link-local (cloud metadata at 169.254.169.254),
unspecified, multicast, documentation, benchmarking and reserved ranges are refused, and so is
an IPv6 address that carries one of them inside it (IPv4-mapped, IPv4-compatible,
IPv4-translated, NAT64 and 6to4: the IPv4 address inside is checked). Teredo, local-use NAT64
and zone ids (`fe80::1%eth0`) are refused whatever they carry. An allow-list
(WEBHOOK_ALLOWED_NETWORKS) may permit some networks, for local development.

The sender calls `resolve_destination` again right before each request and connects to the
address it checked (not to the name: the name goes into the Host header and the TLS server
name), so a DNS answer that changes between the check and the request (DNS rebinding) cannot
redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
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


# Where a host name may not point ------------------------------------------------------------

# IPv4 ranges that are not public unicast (IANA special-purpose registry, RFC 6890 and after).
_V4_REFUSED: list[tuple[ipaddress.IPv4Network, str]] = [
    (ipaddress.IPv4Network(net), kind)
    for net, kind in (
        ("0.0.0.0/8", "unspecified"),  # "this network"; 0.0.0.0 reaches the local host
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved (6to4 relay anycast)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # 255.255.255.255 (broadcast) included
    )
]


def _low32(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def _sixtofour(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)  # bits 16-48


_Embedded = Callable[[ipaddress.IPv6Address], ipaddress.IPv4Address]

# IPv6 prefixes that carry an IPv4 address: whoever routes them ends up at that IPv4 address
# (the kernel itself for mapped ones, a NAT64 gateway, a 6to4 relay), so it is what we check.
_V6_EMBEDDING: list[tuple[ipaddress.IPv6Network, str, _Embedded]] = [
    (ipaddress.IPv6Network(net), kind, extract)
    for net, kind, extract in (
        ("::ffff:0:0/96", "IPv4-mapped", _low32),
        ("::ffff:0:0:0/96", "IPv4-translated (SIIT)", _low32),
        ("64:ff9b::/96", "NAT64", _low32),
        ("2002::/16", "6to4", _sixtofour),
    )
]
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated; :: and ::1 are refused before

# IPv6 ranges refused whatever they carry.
_V6_REFUSED: list[tuple[ipaddress.IPv6Network, str]] = [
    (ipaddress.IPv6Network(net), kind)
    for net, kind in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        # Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the prefix length
        # the operator chose (/48 to /96), and the prefix exists only for translators inside
        # one network, so it never names a public destination.
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        # Teredo: the client's IPv4 address is hidden (inverted) in the last 32 bits and the
        # server's in bits 32-64; reaching either depends on a relay we do not control, and
        # public Teredo relays are gone, so no webhook receiver legitimately uses one.
        ("2001::/32", "Teredo tunnel"),
        ("2001::/23", "reserved (IETF protocol assignments)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
]
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def _kind4(address: ipaddress.IPv4Address) -> str | None:
    for network, kind in _V4_REFUSED:
        if address in network:
            return kind
    return None if address.is_global else "non-public"


def _an(kind: str) -> str:
    return f"an {kind}" if kind[0].lower() in "aeiou" else f"a {kind}"


def classify(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast destination ("10.0.0.1 is a private address"),
    or None when it is one."""
    if isinstance(address, ipaddress.IPv4Address):
        kind = _kind4(address)
        return f"{address} is {_an(kind)} address" if kind else None
    if address.scope_id:
        return f"{address} has a zone id: it names one of our own network interfaces"
    for network, kind in _V6_REFUSED:
        if address in network:
            return f"{address} is {_an(kind)} address"
    embedded: tuple[str, ipaddress.IPv4Address] | None = None
    for network, kind, extract in _V6_EMBEDDING:
        if address in network:
            embedded = kind, extract(address)
    if embedded is None and address in _V4_COMPATIBLE:
        embedded = "IPv4-compatible", _low32(address)
    if embedded is not None:
        label, inner = embedded
        inner_kind = _kind4(inner)
        if inner_kind is None:
            return None
        return f"{address} is {_an(label)} address of {inner}, {_an(inner_kind)} address"
    if address not in _V6_GLOBAL_UNICAST:
        return f"{address} is a reserved address (outside the global unicast range 2000::/3)"
    return None if address.is_global else f"{address} is a non-public address"


def refusal(address: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """Why `address` may not be called, or None when it may. The allow-list permits the
    address itself, or for an IPv4-mapped one (which the kernel connects to as IPv4) the IPv4
    address; it never permits a zone id or an IPv4 address embedded in another prefix."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return classify(address)
    if any(address in network for network in allowed):
        return None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if mapped is not None and any(mapped in network for network in allowed):
        return None
    return classify(address)


# The URL and its host ----------------------------------------------------------------------

_HOST_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def check_url(url: str, *, require_https: bool) -> SplitResult:
    """The URL's shape: http(s), a host, no credentials inside it; the host is a DNS name, a
    dotted-quad IPv4 address or a bracketed IPv6 address."""
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
    check_host(parts.hostname, bracketed="[" in parts.netloc)
    return parts


def check_host(host: str, *, bracketed: bool) -> None:
    """Refuses a host that resolvers and HTTP clients could read differently from us: an IPv4
    address in any form but four decimal parts (`2130706433`, `0177.0.0.1`, `127.1`,
    `0x7f.1`, `127.0.0.1.`: C resolvers and curl read them all as 127.0.0.1), a bracketed
    host that is not an IPv6 address (`[v1.x]`), characters no host name has (`%31`)."""
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeDestination(f"[{host}] is not an IPv6 address") from None
        return
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeDestination(f"{host!r} is not a valid host name") from None
    if not _HOST_NAME.match(ascii_host):
        raise UnsafeDestination(f"{host!r} is not a valid host name")
    if _NUMERIC_LABEL.match(ascii_host.rstrip(".").rsplit(".", 1)[-1]):
        try:
            canonical = str(ipaddress.IPv4Address(host)) == host
        except ValueError:
            canonical = False
        if not canonical:
            raise UnsafeDestination(
                f"{host!r} ends in a number, so resolvers read it as an IPv4 address, but it is "
                "not written as four decimal parts (decimal, octal, hexadecimal, shortened and "
                "trailing-dot forms are refused)"
            )


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
