"""Bearer JWT -> Principal, and the data scope each role may report on (spec §6).

The queries behind a scope live in `app.platform.repository`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.config import Settings
from app.errors import FieldError, Forbidden, Unauthorized
from app.platform.models import User
from app.platform.repository import courses_taught_by

# Re-exported: scope checks elsewhere expand a manager's departments the same way.
from app.platform.repository import department_with_descendants as department_with_descendants


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    INSTRUCTOR = "instructor"
    LEARNER = "learner"

    @classmethod
    def known(cls, values: Iterable[object]) -> tuple[Role, ...]:
        """The roles among `values`, in their order; anything else (a role this service does
        not know, a non-string) is left out."""
        names = {r.value for r in cls}
        return tuple(cls(v) for v in values if isinstance(v, str) and v in names)


ROLE_RANK = {Role.ADMIN: 4, Role.MANAGER: 3, Role.INSTRUCTOR: 2, Role.LEARNER: 1}


@dataclass(frozen=True)
class Principal:
    """Who is calling. `role` is the most privileged of the token's roles."""

    user_id: str
    name: str
    email: str | None
    roles: tuple[Role, ...]
    department_ids: tuple[str, ...] = ()

    @property
    def role(self) -> Role:
        return max(self.roles, key=lambda r: ROLE_RANK[r])

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.user_id,
            "name": self.name,
            "email": self.email,
            "roles": [r.value for r in self.roles],
            "departmentIds": list(self.department_ids),
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthorized("The token has no subject.")
        raw_roles = claims.get("roles")
        if not isinstance(raw_roles, list) or not raw_roles:
            raise Unauthorized("The token carries no roles.")
        roles = Role.known(raw_roles)
        if not roles:
            raise Unauthorized("The token carries no known role.")
        departments = claims.get("departmentIds") or []
        if not isinstance(departments, list) or not all(isinstance(d, str) for d in departments):
            raise Unauthorized("The token's departmentIds claim is malformed.")
        name = claims.get("name")
        email = claims.get("email")
        return cls(
            user_id=sub,
            name=name if isinstance(name, str) and name else sub,
            email=email if isinstance(email, str) else None,
            roles=roles,
            department_ids=tuple(departments),
        )


def principal_of(
    user: User,
    *,
    roles: Iterable[str] | None = None,
    department_ids: Iterable[str] | None = None,
) -> Principal | None:
    """A platform user as a caller: with `roles` (default: all of theirs) narrowed to the roles
    the user still holds, and `department_ids` (default: their department). None when no known
    role is left."""
    held = Role.known(user.roles if roles is None else [r for r in roles if r in user.roles])
    if not held:
        return None
    if department_ids is None:
        department_ids = (str(user.department_id),) if user.department_id else ()
    return Principal(
        user_id=str(user.id),
        name=user.name,
        email=user.email,
        roles=held,
        department_ids=tuple(department_ids),
    )


def decode_token(token: str, settings: Settings) -> dict[str, Any]:
    key = settings.jwt_public_key if settings.jwt_algorithm == "RS256" else settings.jwt_secret
    if not key:
        raise Unauthorized("Token verification is not configured.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired.") from exc
    except jwt.ImmatureSignatureError as exc:
        raise Unauthorized("The token is not valid yet.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The token is invalid.") from exc
    return claims


def mint_token(
    settings: Settings,
    *,
    sub: str,
    name: str,
    email: str | None,
    roles: Iterable[str],
    department_ids: Iterable[str] = (),
    ttl_seconds: int = 12 * 3600,
    extra: dict[str, Any] | None = None,
) -> str:
    """Signs a token the way the learning platform's identity service would."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": sub,
        "name": name,
        "email": email,
        "roles": list(roles),
        "departmentIds": list(department_ids),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        **(extra or {}),
    }
    if settings.jwt_algorithm == "RS256":
        if not settings.jwt_private_key:
            raise ValueError("JWT_PRIVATE_KEY is needed to mint RS256 tokens")
        return jwt.encode(payload, settings.jwt_private_key, algorithm="RS256")
    return jwt.encode(payload, settings.jwt_secret, algorithm="HS256")


_bearer = HTTPBearer(
    auto_error=False,
    description=(
        "A JWT issued by the learning platform; paste the token alone (no `Bearer `). Locally, "
        "`make run` prints one per demo role, `.venv/bin/python -m scripts.mint_token --demo` "
        "prints them again, and `.venv/bin/python -m scripts.mint_token --sub <user id> --role "
        "manager --department <department id>` signs one with the claims you choose."
    ),
)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized()
    # The app's own settings (not the process's): two apps in one process check their own keys.
    settings: Settings = request.app.state.settings
    principal = Principal.from_claims(decode_token(credentials.credentials, settings))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


@dataclass
class DataScope:
    """What data a caller may report on. `None` on a dimension means unrestricted."""

    department_ids: frozenset[str] | None = None
    course_ids: frozenset[str] | None = None
    user_id: str | None = None
    description: str = "all data"
    extra: dict[str, Any] = field(default_factory=dict)
    # The departments a learner may name in a filter (its own): its rows are bound to
    # `user_id` whatever it names, but naming another department is out of scope all the same.
    own_department_ids: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.department_ids is None and self.course_ids is None and self.user_id is None

    def to_document(self) -> dict[str, Any]:
        return {
            "departmentIds": sorted(self.department_ids)
            if self.department_ids is not None
            else None,
            "courseIds": sorted(self.course_ids) if self.course_ids is not None else None,
            "userId": self.user_id,
            "description": self.description,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> DataScope:
        deps = doc.get("departmentIds")
        courses = doc.get("courseIds")
        return cls(
            department_ids=frozenset(deps) if deps is not None else None,
            course_ids=frozenset(courses) if courses is not None else None,
            user_id=doc.get("userId"),
            description=doc.get("description", ""),
        )

    def narrow(self, field_name: str, requested: Iterable[str] | None) -> frozenset[str] | None:
        """Intersects a requested id filter with the scope; raises 403 naming ids outside it.
        Omitting the filter means "all I may see"."""
        allowed = self.department_ids if field_name == "departmentIds" else self.course_ids
        if requested is None:
            return allowed
        wanted = frozenset(requested)
        nameable = allowed
        if field_name == "departmentIds" and allowed is None:
            nameable = self.own_department_ids
        if nameable is None:
            return wanted
        outside = sorted(wanted - nameable)
        if outside:
            message = f"outside your data scope: {', '.join(outside)}"
            raise Forbidden(
                f"{field_name} {message}",
                code="scope-exceeded",
                errors=[
                    FieldError(
                        field=f"parameters.{field_name}",
                        message=message,
                        type="scope-exceeded",
                    )
                ],
                extra={"field": field_name, "outOfScope": outside},
            )
        return wanted


async def resolve_scope(principal: Principal) -> DataScope:
    """Turns the caller's role into the data it may report on, looked up now (so a scheduled
    run re-checks the owner's rights at run time)."""
    role = principal.role
    if role == Role.ADMIN:
        return DataScope(description="all data (admin)")
    if role == Role.MANAGER:
        departments = await department_with_descendants(principal.department_ids)
        return DataScope(
            department_ids=departments,
            description="departments managed by the caller, with their sub-departments",
        )
    if role == Role.INSTRUCTOR:
        return DataScope(
            course_ids=await courses_taught_by(principal.user_id),
            description="courses the caller teaches",
        )
    return DataScope(
        user_id=principal.user_id,
        description="the caller's own learning",
        own_department_ids=frozenset(principal.department_ids),
    )
