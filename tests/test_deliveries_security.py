"""Delivery rules that keep data in the right hands: webhook signatures, delivery links, SSRF
refusals and who may receive a report."""

from __future__ import annotations

import ipaddress
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.common.ssrf import UnsafeDestination, classify, parse_networks, resolve_destination
from app.config import Environment, Settings
from app.errors import ValidationFailed
from app.reports.deliveries.links import LinkError, issue_link_token, verify_link_token
from app.reports.deliveries.recipients import validate_recipients, validate_webhook_url
from app.reports.deliveries.signing import (
    SignatureError,
    generate_secret,
    sign,
    signature_headers,
    verify,
)
from app.runtime.resources import Resources
from tests import factories
from tests.helpers.deliveries import CONNECTIONS, Receiver
from tests.helpers.unsafe_inputs import UNSAFE_URLS, stand_in_resolver

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


# Standard Webhooks ---------------------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The example of the Standard Webhooks specification's reference libraries.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verification_refuses_tampering_other_secrets_and_stale_timestamps() -> None:
    secret, other = generate_secret(), generate_secret()
    assert secret.startswith("whsec_") and secret != other
    body = b'{"type":"report.completed"}'
    headers = signature_headers([secret], "msg_1", body, now=NOW)
    assert verify(secret, headers, body, now=NOW + timedelta(minutes=4)) == "msg_1"
    with pytest.raises(SignatureError, match="no signature"):
        verify(secret, headers, body + b" ", now=NOW)
    with pytest.raises(SignatureError, match="no signature"):
        verify(other, headers, body, now=NOW)
    with pytest.raises(SignatureError, match="too old"):
        verify(secret, headers, body, now=NOW + timedelta(minutes=6))
    with pytest.raises(SignatureError, match="missing"):
        verify(secret, {"webhook-id": "msg_1"}, body, now=NOW)
    both = signature_headers([other, secret], "msg_1", body, now=NOW)
    assert verify(secret, both, body, now=NOW) == verify(other, both, body, now=NOW)


# Delivery links ----------------------------------------------------------------------------


def test_delivery_links_verify_for_their_recipient_and_expire() -> None:
    settings = Settings(delivery_link_secret="s" * 40)
    token = issue_link_token(
        settings, delivery_id="d1", recipient="user:u1", expires_at=NOW + timedelta(days=7)
    )
    claims = verify_link_token(settings, token, now=NOW)
    assert (claims.delivery_id, claims.recipient) == ("d1", "user:u1")
    with pytest.raises(LinkError) as expired:
        verify_link_token(settings, token, now=NOW + timedelta(days=7, seconds=1))
    assert expired.value.reason == "expired"
    _, sig = token.split(".")
    forged = issue_link_token(
        settings, delivery_id="d2", recipient="user:u1", expires_at=NOW + timedelta(days=7)
    ).split(".")[0]
    with pytest.raises(LinkError) as bad:
        verify_link_token(settings, f"{forged}.{sig}", now=NOW)
    assert bad.value.reason == "bad-signature"
    with pytest.raises(LinkError) as other_key:
        verify_link_token(Settings(delivery_link_secret="t" * 40), token, now=NOW)
    assert other_key.value.reason == "bad-signature"
    for junk in ("", "abc", "a.b.c", "!!.??"):
        with pytest.raises(LinkError) as malformed:
            verify_link_token(settings, junk, now=NOW)
        assert malformed.value.reason in ("malformed", "bad-signature")


def test_a_link_is_not_a_jwt_signed_with_the_same_secret() -> None:
    # Without DELIVERY_LINK_SECRET links use JWT_SECRET under their own label.
    settings = Settings(jwt_secret="j" * 40)
    token = issue_link_token(
        settings, delivery_id="d1", recipient="email:a@b.c", expires_at=NOW + timedelta(days=1)
    )
    assert verify_link_token(settings, token, now=NOW).delivery_id == "d1"
    with pytest.raises(LinkError):
        verify_link_token(Settings(jwt_secret="k" * 40), token, now=NOW)


# SSRF --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "reason"), UNSAFE_URLS)
async def test_private_destinations_are_refused_before_any_connection(
    url: str, reason: str
) -> None:
    for allowed in ([], parse_networks("127.0.0.1/32")):  # production and local settings
        CONNECTIONS.active, CONNECTIONS.addresses = True, []
        try:
            with pytest.raises(UnsafeDestination, match=re.escape(reason)):
                await resolve_destination(url, allowed=allowed, require_https=False)
        finally:
            CONNECTIONS.active = False
        assert CONNECTIONS.addresses == []


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_addresses_pass_also_inside_ipv6(address: str) -> None:
    # NAT64 and 6to4 forms of a public IPv4 address reach that public address.
    assert classify(ipaddress.ip_address(address)) is None


async def test_names_resolving_to_refused_addresses_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A DNS name is judged by every address it resolves to, embedded forms included (the
    answers come from a stand-in resolver for `.example` names: nothing leaves the machine)."""
    answers = {
        "nat64.example": ["64:ff9b::a9fe:a9fe"],
        "mixed.example": ["8.8.8.8", "2002:a00:1::"],
        "compat.example": ["::7f00:1"],
        "public.example": ["8.8.4.4", "64:ff9b::808:808"],
    }
    stand_in_resolver(monkeypatch, answers)
    for name, reason in (
        ("nat64.example", "NAT64 address of 169.254.169.254"),
        ("mixed.example", "6to4 address of 10.0.0.1"),
        ("compat.example", "IPv4-compatible address of 127.0.0.1"),
    ):
        with pytest.raises(UnsafeDestination, match=re.escape(f"'{name}' resolves to")) as exc:
            await resolve_destination(f"https://{name}/hook", allowed=[], require_https=True)
        assert reason in str(exc.value)
    public = await resolve_destination("https://public.example/x", allowed=[], require_https=True)
    assert (str(public.address), public.host_header()) == ("8.8.4.4", "public.example")


async def test_the_allow_list_permits_loopback_and_the_guard_sees_connections(
    http_receiver: Receiver,
) -> None:
    allowed = parse_networks("127.0.0.1/32")
    destination = await resolve_destination(
        http_receiver.url(), allowed=allowed, require_https=False
    )
    assert str(destination.address) == "127.0.0.1"
    assert destination.connect_url() == http_receiver.url()
    # The audit hook the refusal tests rely on does see a real connect.
    CONNECTIONS.active, CONNECTIONS.addresses = True, []
    try:
        with socket.create_connection(("127.0.0.1", http_receiver.port), timeout=2):
            pass
    finally:
        CONNECTIONS.active = False
    assert ("127.0.0.1", http_receiver.port) in CONNECTIONS.addresses
    with pytest.raises(UnsafeDestination, match="private"):
        await resolve_destination("http://10.0.0.1/", allowed=allowed, require_https=False)
    # The kernel connects to an IPv4-mapped address as IPv4: the allow-list applies to it.
    mapped = await resolve_destination(
        f"http://[::ffff:127.0.0.1]:{http_receiver.port}/", allowed=allowed, require_https=False
    )
    assert str(mapped.address) == "::ffff:7f00:1"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "scheme"),
        ("http://user:pw@example.com/x", "credentials"),
        ("http:///x", "no host"),
        ("http://example.com:99999/x", "not a valid URL"),
    ],
)
async def test_malformed_webhook_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeDestination, match=reason):
        await resolve_destination(url, allowed=[], require_https=False)


def test_bad_allow_list_entries_are_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        parse_networks("127.0.0.1, 10.0.0.0/33")


# Recipients --------------------------------------------------------------------------------


def _field(exc: pytest.ExceptionInfo[ValidationFailed]) -> str:
    assert exc.value.errors
    return exc.value.errors[0].field


async def test_recipients_are_platform_users_or_addresses_on_allowed_domains(
    resources: Resources,
) -> None:
    settings = resources.settings.model_copy(update={"allowed_recipient_domains": ""})
    ann = await factories.user("Ann", email="ann@School.example")
    await factories.user("Gone", email="gone@school.example", status="inactive")
    recipients = await validate_recipients(
        [str(ann.id), "bob@SCHOOL.example", "ann@School.example"], settings
    )
    assert [(r.user_id, r.address) for r in recipients] == [
        (str(ann.id), "ann@School.example"),
        (None, "bob@school.example"),
    ]
    with pytest.raises(ValidationFailed) as outsider:
        await validate_recipients(["bob@school.example", "eve@evil.example"], settings)
    assert _field(outsider) == "body.recipients.1"
    assert "evil.example" in str(outsider.value.errors[0].message)  # type: ignore[index]
    with pytest.raises(ValidationFailed) as syntax:
        await validate_recipients(["not an address"], settings, field="body.recipients")
    assert _field(syntax) == "body.recipients.0"
    with pytest.raises(ValidationFailed) as unknown:
        await validate_recipients(["0123456789abcdef01234567"], settings)
    assert "not an active platform user" in str(unknown.value.detail)
    inactive = await validate_recipients_error(settings, "gone@school.example")
    assert inactive is None  # an address on a platform domain is fine even if its user left

    configured = settings.model_copy(update={"allowed_recipient_domains": "partner.example"})
    assert await validate_recipients(["x@partner.example"], configured)
    with pytest.raises(ValidationFailed):
        await validate_recipients(["bob@school.example"], configured)

    few = settings.model_copy(update={"delivery_max_recipients": 2})
    with pytest.raises(ValidationFailed) as many:
        await validate_recipients(["a@school.example"] * 3, few)
    assert _field(many) == "body.recipients" and many.value.status == 422


async def validate_recipients_error(settings: Settings, value: str) -> ValidationFailed | None:
    try:
        await validate_recipients([value], settings)
    except ValidationFailed as exc:
        return exc
    return None


async def test_webhook_urls_must_be_https_in_production_and_public(
    http_receiver: Receiver,
) -> None:
    local = Settings(webhook_allowed_networks="127.0.0.1/32")
    assert await validate_webhook_url(local, http_receiver.url()) == http_receiver.url()
    with pytest.raises(ValidationFailed) as private:
        await validate_webhook_url(local, "http://169.254.169.254/", field="body.webhooks.0.url")
    assert _field(private) == "body.webhooks.0.url" and private.value.status == 422
    with pytest.raises(ValidationFailed, match="localhost"):
        await validate_webhook_url(Settings(), "http://localhost/hook")
    production = Settings(app_env=Environment.PRODUCTION, jwt_secret="p" * 40)
    with pytest.raises(ValidationFailed, match="scheme must be https"):
        await validate_webhook_url(production, "http://hooks.example/x")


def test_the_receiver_sample_in_the_docs_verifies_our_signatures() -> None:
    text = (Path(__file__).parents[1] / "docs" / "delivery.md").read_text()
    sample = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(sample, "docs/delivery.md", "exec"), namespace)
    verify_webhook = namespace["verify_webhook"]
    old, new = generate_secret(), generate_secret()
    body = b'{"type":"report.completed","data":{}}'
    headers = signature_headers([new, old], "msg_abc", body)
    assert verify_webhook(old, headers, body) == verify_webhook(new, headers, body) == "msg_abc"
    with pytest.raises(ValueError, match="no valid signature"):
        verify_webhook(generate_secret(), headers, body)
    with pytest.raises(ValueError, match="no valid signature"):
        verify_webhook(new, headers, body + b"\n")


def test_delivery_settings_refuse_contradictions() -> None:
    with pytest.raises(ValidationError, match="SMTP_TLS and SMTP_STARTTLS"):
        Settings(smtp_tls=True, smtp_starttls=True)
    rs256 = {"app_env": "production", "jwt_algorithm": "RS256", "jwt_public_key": "k"}
    with pytest.raises(ValidationError, match="DELIVERY_LINK_SECRET is required"):
        Settings(**rs256)  # type: ignore[arg-type]
    assert Settings(**rs256, delivery_link_secret="d" * 40).delivery_link_secret  # type: ignore[arg-type]
