"""Bearer tokens for test callers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from app.config import Settings
from app.security import mint_token

TokenFactory = Callable[..., dict[str, str]]
"""`auth(role, sub=..., name=..., departments=[...], roles=[...])` -> Authorization headers."""


def token_factory(settings: Settings) -> TokenFactory:
    """Mints tokens an app built on `settings` accepts."""

    def make(
        role: str = "admin",
        *,
        sub: str | None = None,
        name: str | None = None,
        departments: list[str] | None = None,
        roles: list[str] | None = None,
    ) -> dict[str, str]:
        token = mint_token(
            settings,
            sub=sub or str(uuid.uuid4().hex[:24]),
            name=name or f"Test {role.title()}",
            email=f"{role}@example.test",
            roles=roles or [role],
            department_ids=departments or [],
        )
        return {"Authorization": f"Bearer {token}"}

    return make
