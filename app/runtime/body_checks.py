"""A body with shape mistakes still gets the domain checks of every part that parsed, so one
422 names every problem of the request.

FastAPI answers a body whose shape fails (a malformed date, a wrong type, an unknown enum
value, an unknown field) before the endpoint runs; the checks an endpoint makes itself (lookup
codes, date bounds, ids outside the caller's data scope, schedule rules, columns, alert
metrics) would only be met on a second try. An endpoint marked with `checks_body_parts` names
its body model, the checks it runs before it stores anything, and which fields those checks
judge together. On a shape 422 the validation handler (`app.error_handlers`) then

1. sets aside every top-level field with a shape mistake, and every field whose checks read
   one of those (`depends`: the parameters are judged against the report type, a schedule's
   timing fields against its frequency),
2. validates the rest of the body on its own (a required field set aside takes its stand-in,
   a value no check judges, when the rest cannot do without it),
3. runs the endpoint's checks on it, storing nothing, and keeps the problems they name, except
   those of a field set aside: that field has its shape mistake named already,
4. answers one 422: the shape mistakes in the order FastAPI found them, then the other
   problems in the order the checks found them, each once.

A refusal (a role that may not run the report type, a 404 for the object a PATCH names) is not
part of it: invalid input is answered first, the refusal once the input is valid (as
`Problems` does). Ids outside the caller's scope are one more problem of the 422, as with any
other mistake. A check that cannot run (the rest of the body does not validate, the database is
away) adds nothing: the shape 422 is answered as it always was.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.errors import AppError, FieldError, Problems
from app.security import Principal

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_MARK = "__body_parts__"
_LOCATIONS = ("body", "query", "header", "path", "cookie")


@dataclass(frozen=True)
class BodyParts(Generic[M]):
    """How an endpoint's body is checked in parts (field names as in the model, snake_case)."""

    model: type[M]
    # The endpoint's checks, nothing stored: raises `ValidationFailed` (or the 403 for ids
    # outside the scope) naming every problem, as the endpoint itself would.
    check: Callable[[Request, Principal, M], Awaitable[None]]
    # field → the other fields its checks read: set aside with any of them.
    depends: Mapping[str, Collection[str]] = field(default_factory=dict)
    # field → the value a required field set aside takes (no check judges it).
    stand_ins: Mapping[str, Any] = field(default_factory=dict)


def checks_body_parts(parts: BodyParts[Any]) -> Callable[[Endpoint], Endpoint]:
    """Marks an endpoint whose body's parts are checked on a shape 422 (see the module)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _MARK, parts)
        return endpoint

    return mark


def _field_names(model: type[BaseModel]) -> dict[str, str]:
    """Each key a body may name a field with (its camelCase alias, or its own name) → the
    field's name."""
    names: dict[str, str] = {}
    for name, info in model.model_fields.items():
        names[name] = name
        if info.alias:
            names[info.alias] = name
    return names


def _set_aside(bad: set[str], depends: Mapping[str, Collection[str]]) -> set[str]:
    """`bad` and every field whose checks read a field set aside, to the last one."""
    aside = set(bad)
    grew = True
    while grew:
        grew = False
        for name, reads in depends.items():
            if name not in aside and aside.intersection(reads):
                aside.add(name)
                grew = True
    return aside


def _validated(parts: BodyParts[M], rest: dict[str, Any], aside: set[str]) -> M | None:
    """The body's other fields as the model, a stand-in in the place of each required field
    set aside when they cannot do without it; None when they do not validate even so."""
    try:
        return parts.model.model_validate(rest)
    except ValidationError:
        pass
    aliases = {name: info.alias or name for name, info in parts.model.model_fields.items()}
    stood_in = {aliases[n]: v for n, v in parts.stand_ins.items() if n in aside and n in aliases}
    if not stood_in:
        return None
    try:
        return parts.model.model_validate({**rest, **stood_in})
    except ValidationError:
        return None


_HEAD = re.compile(r"[.\[]")


def _named(error: FieldError) -> tuple[str, str]:
    """Where a problem is and the top-level name it is under: `body.parameters.from` →
    (body, parameters); a request's own fields, named without `body.` (`parameters.from`,
    `columns[2]`), are in the body too."""
    location, _, rest = error.field.partition(".")
    if location not in _LOCATIONS or not rest:
        location, rest = "body", error.field
    return location, _HEAD.split(rest, maxsplit=1)[0]


async def domain_problems(
    request: Request, body: Any, shape: Sequence[tuple[Any, ...]]
) -> list[FieldError]:
    """The problems the checks of the request's endpoint find in the parts of `body` that
    parsed, when its shape failed at `shape` (the locations of FastAPI's errors); none for an
    endpoint not marked with `checks_body_parts`, a body that is not an object or a request
    not authenticated."""
    parts = getattr(request.scope.get("endpoint"), _MARK, None)
    principal = getattr(request.state, "principal", None)
    if not isinstance(parts, BodyParts) or not isinstance(principal, Principal):
        return []
    if not isinstance(body, dict):
        return []
    names = _field_names(parts.model)
    keys = {str(loc[1]) for loc in shape if len(loc) > 1 and loc[0] == "body"}
    aside = _set_aside({names[k] for k in keys if k in names}, parts.depends)
    rest = {k: v for k, v in body.items() if k in names and names[k] not in aside}
    model = _validated(parts, rest, aside)
    if model is None:
        return []
    problems = Problems()
    try:
        with problems.collect():
            await parts.check(request, principal, model)
    except AppError:
        pass  # a refusal (403, 404, 409, …): answered once the input is valid
    except Exception:  # the checks could not run: the shape 422 stands as it is
        log.warning("body_checks_failed", path=request.url.path, exc_info=True)
    named_aside = {("body", a) for a, n in names.items() if n in aside}
    named_aside |= {(str(loc[0]), str(loc[1])) for loc in shape if len(loc) > 1}
    return [e for e in problems.errors if _named(e) not in named_aside]


def merged(shape: Sequence[FieldError], domain: Sequence[FieldError]) -> list[FieldError]:
    """The shape mistakes, then the other problems, each once."""
    errors: list[FieldError] = []
    for error in [*shape, *domain]:
        if error not in errors:
            errors.append(error)
    return errors
