"""The tables of destinations the service must refuse: webhook URLs whose host is not a public
unicast address in any spelling, and e-mail addresses that are not exactly one plain address on
an allowed domain. Shared by the direct tests of the rules and the API / sender tests, with a
stand-in resolver for names of the reserved `.example` domain (nothing leaves the machine)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

# (URL, what the refusal says). None of them is 127.0.0.1 written plainly (or IPv4-mapped), so
# each is refused with and without the local allow-list (WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32).
UNSAFE_URLS: list[tuple[str, str]] = [
    # IPv4 inside IPv6: the embedded address is what a gateway, a relay or the kernel reaches.
    ("http://[::ffff:10.0.0.1]/hook", "IPv4-mapped address of 10.0.0.1, a private"),
    ("http://[::ffff:a9fe:a9fe]/hook", "IPv4-mapped address of 169.254.169.254, a link-local"),
    ("http://[::127.0.0.1]/hook", "IPv4-compatible address of 127.0.0.1, a loopback"),
    ("http://[::10.0.0.1]/hook", "IPv4-compatible address of 10.0.0.1, a private"),
    ("http://[::ffff:0:7f00:1]/hook", "IPv4-translated (SIIT) address of 127.0.0.1"),
    ("http://[64:ff9b::a00:1]/hook", "NAT64 address of 10.0.0.1, a private"),
    ("https://[64:ff9b::a9fe:a9fe]/hook", "NAT64 address of 169.254.169.254, a link-local"),
    ("http://[64:ff9b::7f00:1]:8080/hook", "NAT64 address of 127.0.0.1, a loopback"),
    ("http://[64:ff9b:1::a00:1]/hook", "local-use NAT64 address"),
    ("http://[64:ff9b:1:ffff::808:808]/hook", "local-use NAT64 address"),  # whatever it carries
    ("http://[2002:a9fe:a9fe::]/hook", "6to4 address of 169.254.169.254, a link-local"),
    ("http://[2002:a00:1::1]/hook", "6to4 address of 10.0.0.1, a private"),
    ("http://[2002:7f00:1::]/hook", "6to4 address of 127.0.0.1, a loopback"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "Teredo tunnel address"),
    ("http://[2001::a9fe:a9fe]/hook", "Teredo tunnel address"),
    # Other IPv6 ranges that are not public unicast.
    ("http://[::]/hook", ":: is an unspecified address"),
    ("http://[::1]/hook", "::1 is a loopback address"),
    ("http://[fe80::1%25eth0]/hook", "has a zone id"),
    ("http://[fe80::a9fe:a9fe]/hook", "link-local address"),
    ("http://[fd00:ec2::254]/hook", "private (unique local) address"),
    ("http://[fec0::1]/hook", "site-local address"),
    ("http://[ff02::1]/hook", "multicast address"),
    ("http://[2001:db8::1]/hook", "documentation address"),
    ("http://[3fff::1]/hook", "documentation address"),
    ("http://[100::1]/hook", "discard-only address"),
    ("http://[2001:2::1]/hook", "reserved (IETF protocol assignments) address"),
    ("http://[5f00::1]/hook", "outside the global unicast range"),
    # IPv4 ranges.
    ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
    ("http://172.16.0.1/hook", "private address"),
    ("http://192.168.1.10/hook", "private address"),
    ("http://169.254.169.254/latest/meta-data", "link-local (cloud metadata) address"),
    ("http://0.0.0.0/hook", "unspecified address"),
    ("http://100.64.0.1/hook", "shared (carrier-grade NAT) address"),
    ("http://224.0.0.1/hook", "multicast address"),
    ("http://255.255.255.255/hook", "reserved address"),
    ("http://240.0.0.1/hook", "reserved address"),
    ("http://192.0.2.1/hook", "documentation address"),
    ("http://203.0.113.9/hook", "documentation address"),
    ("http://198.18.0.1/hook", "benchmarking address"),
    ("http://192.0.0.9/hook", "reserved (IETF protocol assignments) address"),
    # IPv4 spellings that `ipaddress` does not read but C resolvers and curl do (127.0.0.1).
    ("http://2130706433/hook", "ends in a number"),
    ("http://0177.0.0.1/hook", "ends in a number"),
    ("http://127.1/hook", "ends in a number"),
    ("http://0x7f.0.0.1/hook", "ends in a number"),
    ("http://0x7f000001/hook", "ends in a number"),
    ("http://017700000001/hook", "ends in a number"),
    ("http://127.0.0.1./hook", "ends in a number"),
    ("http://169.254.169.254./hook", "ends in a number"),
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/hook", "ends in a number"),  # full width
    ("http://[v1.x]/hook", "is not an IPv6 address"),
    ("http://%31%32%37.0.0.1/hook", "is not a valid host name"),
]

# (address, the 422's error type, what the refusal says) for a recipient on an allowed domain
# of the test settings (example.org) unless the domain is the point.
UNSAFE_ADDRESSES: list[tuple[str, str, str]] = [
    ("outsider@evil.example", "domain-not-allowed", "'evil.example' may not receive reports"),
    ("a@example.org, b@evil2.example", "unsafe-address", "exactly one address"),
    ("a@example.org;b@evil2.example", "unsafe-address", "exactly one address"),
    ("x@example.org\r\nBcc: e@evil.example", "unsafe-address", "control characters"),
    ("x@example.org\n", "unsafe-address", "control characters"),
    ("x@example.org\u202e", "unsafe-address", "control characters"),
    ("x%evil.example@example.org", "unsafe-address", "percent hack"),
    ("evil.example!x@example.org", "unsafe-address", "bang path"),
    ("@evil.example:x@example.org", "unsafe-address", "source routes"),
    ("@a.example,@b.example:x@example.org", "unsafe-address", "source routes"),
    ('"x@evil.example"@example.org', "unsafe-address", "quoted local parts"),
    ("x\\@evil.example@example.org", "unsafe-address", "backslashes"),
    ("Eve <x@example.org>", "unsafe-address", "display names"),
    ("x@example.org (Eve)", "unsafe-address", "comments"),
    ("team: x@example.org;", "unsafe-address", "groups"),
    ("x@evil.example@example.org", "invalid", "one @"),
    ("x@[127.0.0.1]", "invalid", "bracketed IP address"),
    ("x@localhost", "invalid", "not a valid e-mail address"),
    ("not an address", "invalid", "not an e-mail address"),
]


def stand_in_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Answers `answers` for their names (the others go to the real resolver); returns the
    list of names looked up, in order."""
    asked: list[str] = []
    loop = asyncio.get_running_loop()
    real = type(loop).getaddrinfo

    async def getaddrinfo(self: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in answers:
            return await real(self, host, port, *args, **kwargs)
        asked.append(name)
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, int(port or 0), 0, 0) if ":" in ip else (ip, int(port or 0)),
            )
            for ip in answers[name]
        ]

    monkeypatch.setattr(type(loop), "getaddrinfo", getaddrinfo)
    return asked
