"""Bearer tokens: every kind of bad token is a 401 problem body that helps no attacker."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.config import Settings
from app.errors import Unauthorized
from app.main import create_app
from app.runtime.resources import Resources
from app.security import decode_token, mint_token
from tests.helpers.api import api_client
from tests.helpers.tokens import token_factory

URL = "/api/v1/reports/jobs"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(settings: Settings, **over: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "65f000000000000000000001",
        "name": "Mallory",
        "roles": ["admin"],
        "departmentIds": [],
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _bad_tokens(settings: Settings) -> dict[str, str]:
    secret = settings.jwt_secret
    return {
        "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(settings))}.",
        "wrong-signature": jwt.encode(
            _claims(settings), "another-secret-entirely-different-from-ours", "HS256"
        ),
        "wrong-issuer": jwt.encode(_claims(settings, iss="evil"), secret, "HS256"),
        "wrong-audience": jwt.encode(_claims(settings, aud="other-app"), secret, "HS256"),
        "expired": jwt.encode(
            _claims(settings, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
            secret,
            "HS256",
        ),
        "not-yet-valid": jwt.encode(
            _claims(settings, nbf=int(time.time()) + 3600), secret, "HS256"
        ),
        "no-subject": jwt.encode(_claims(settings, sub=None), secret, "HS256"),
        "no-roles": jwt.encode(_claims(settings, roles=[]), secret, "HS256"),
        "unknown-role": jwt.encode(_claims(settings, roles=["superuser"]), secret, "HS256"),
        "no-expiry": jwt.encode(_claims(settings, exp=None), secret, "HS256"),
        "garbage": "not.a.token",
        "empty-ish": "e30.e30.e30",
    }


@pytest.mark.parametrize(
    "case",
    [
        "alg-none",
        "wrong-signature",
        "wrong-issuer",
        "wrong-audience",
        "expired",
        "not-yet-valid",
        "no-subject",
        "no-roles",
        "unknown-role",
        "no-expiry",
        "garbage",
        "empty-ish",
    ],
)
async def test_bad_tokens_are_401(client: httpx.AsyncClient, settings: Settings, case: str) -> None:
    token = _bad_tokens(settings)[case]
    response = await client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["code"] == "authentication-required"
    assert "Bearer" in response.headers["www-authenticate"]
    # Nothing that helps an attacker: no secret, no library internals, no stack.
    text = response.text.lower()
    for leak in (settings.jwt_secret.lower(), "traceback", "pyjwt", "signature verification"):
        assert leak not in text


@pytest.mark.parametrize(
    "header", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer x y", "Token abc"]
)
async def test_missing_or_malformed_authorization_is_401(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = await client.get(URL, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication-required"


async def test_valid_token_is_accepted(client: httpx.AsyncClient, auth: object) -> None:
    response = await client.get(URL, headers=auth("admin"))  # type: ignore[operator]
    assert response.status_code == 200


def test_rs256_tokens_verify_with_the_public_key(settings: Settings) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rs = settings.model_copy(
        update={"jwt_algorithm": "RS256", "jwt_public_key": public, "jwt_private_key": private}
    )
    token = mint_token(rs, sub="u1", name="U", email=None, roles=["learner"])
    assert decode_token(token, rs)["sub"] == "u1"
    # An HS256 token signed with the public key as secret (algorithm confusion) is refused.
    forged = jwt.encode(_claims(rs), "x" * 40, "HS256")
    with pytest.raises(Unauthorized):
        decode_token(forged, rs)


async def test_each_app_checks_tokens_against_its_own_settings(
    resources: Resources, settings: Settings
) -> None:
    """Two apps in one process with different JWT secrets: each accepts only its own tokens
    (the settings an app was built with, not the process's, decide)."""
    first = settings.model_copy(update={"jwt_secret": "first-app-secret-" + "a" * 20})
    second = settings.model_copy(update={"jwt_secret": "second-app-secret-" + "b" * 20})
    first_token, second_token = token_factory(first)("admin"), token_factory(second)("admin")
    for own, other, app_settings in (
        (first_token, second_token, first),
        (second_token, first_token, second),
    ):
        application = create_app(app_settings, resources=resources)
        async with application.router.lifespan_context(application), api_client(application) as c:
            assert (await c.get(URL, headers=own)).status_code == 200
            refused = await c.get(URL, headers=other)
            assert refused.status_code == 401
            assert refused.json()["code"] == "authentication-required"
