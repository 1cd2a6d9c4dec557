"""Domain errors, the RFC 9457 problem body they become, and the collector that gathers every
problem of one request into one 422. The exception handlers are in `app.error_handlers`; the
codes in `app.error_codes`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Request
from pydantic import BaseModel, Field, JsonValue, WithJsonSchema, computed_field

from app.error_codes import all_codes, problem_codes, title_of


def read_request_id(request: Request) -> str | None:
    """The id the request-id middleware gave this request (echoed in X-Request-ID)."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


PROBLEM_JSON = "application/problem+json"
# An error code as a response carries it: any registered code (a failed job's, a rejected batch
# item's), listed in the JSON Schema.
ErrorCodeValue = Annotated[str, WithJsonSchema({"type": "string", "enum": all_codes()})]
ERROR_TYPE_BASE = "https://errors.report-system.dev/"


class FieldError(BaseModel):
    """One invalid input: where it is, why it is wrong, and what is allowed."""

    field: str = Field(
        description="Dotted path to the offending input, e.g. `body.parameters.from`"
    )
    message: str = Field(description="Why it is wrong, for people")
    type: str = Field(
        default="invalid",
        description="Machine-readable reason as first published (`code` is the same in kebab-case)",
    )
    allowed: list[str] | None = Field(default=None, description="Allowed values, when a finite set")

    @computed_field(  # type: ignore[prop-decorator]
        description="Machine-readable reason, kebab-case: `missing`, `string-too-short`, "
        "`lookup-code`, `scope-exceeded`, …"
    )
    @property
    def code(self) -> str:
        return self.type.replace("_", "-")


class Problem(BaseModel):
    """An error response (RFC 9457)."""

    type: str = Field(
        default="about:blank",
        description=f"`{ERROR_TYPE_BASE}<code>`: the same for every answer with this code",
    )
    title: str = Field(description="Short; the same for every answer with this code")
    status: int
    detail: str | None = Field(default=None, description="What happened this time, for people")
    code: str = Field(
        description="Stable machine-readable error code, `<noun>-<problem>` "
        "(GET /api/v1/reports/metadata/error-codes lists them with their status and when "
        "they happen)",
        json_schema_extra={"enum": list[JsonValue](problem_codes())},
    )
    instance: str | None = None
    request_id: str | None = Field(default=None, alias="requestId")
    errors: list[FieldError] | None = Field(
        default=None, description="422: every problem found in the input, each naming its field"
    )

    model_config = {"populate_by_name": True}


class AppError(Exception):
    status: int = 500
    code: str = "server-error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        if code:
            self.code = code
        self.errors = list(errors) if errors else None
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(AppError):
    status, code, title = 400, "request-invalid", "Bad request"


class Unauthorized(AppError):
    status, code, title = 401, "authentication-required", "Authentication required"

    def __init__(self, detail: str = "A valid bearer token is required.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(detail, **kw)


class Forbidden(AppError):
    status, code, title = 403, "permission-denied", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "resource-not-found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "resource-conflict", "Conflict"


class Gone(AppError):
    status, code, title = 410, "resource-gone", "Gone"


class PreconditionFailed(AppError):
    status, code, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload-too-large", "Payload too large"


class RangeNotSatisfiable(AppError):
    status, code, title = 416, "range-not-satisfiable", "Range not satisfiable"

    def __init__(self, detail: str, *, size: int) -> None:
        super().__init__(detail, headers={"Content-Range": f"bytes */{size}"})


class UnsupportedMediaType(AppError):
    status, code, title = 415, "media-type-unsupported", "Unsupported media type"


class ValidationFailed(AppError):
    status, code, title = 422, "validation-failed", "Validation failed"

    @classmethod
    def one(
        cls, field: str, message: str, *, type: str = "invalid", allowed: list[str] | None = None
    ) -> ValidationFailed:
        return cls(
            f"{field}: {message}",
            errors=[FieldError(field=field, message=message, type=type, allowed=allowed)],
        )

    @classmethod
    def of(cls, errors: Sequence[FieldError]) -> ValidationFailed:
        """One 422 naming every error (the detail names the first five)."""
        return cls(summary(errors), errors=errors)


class TooManyRequests(AppError):
    status, code, title = 429, "rate-limit-exceeded", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(detail, **kw)


class ServiceUnavailable(AppError):
    status, code, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(detail, **kw)


SERVICE_BUSY_RETRY_AFTER = 5  # seconds a client waits after a 503 service-busy


class ServiceBusy(ServiceUnavailable):
    """The request's own work could not be done in time (app/runtime/deadline.py)."""

    code, title = "service-busy", "Service busy"

    def __init__(self, detail: str, *, retry_after: int = SERVICE_BUSY_RETRY_AFTER) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def summary(errors: Sequence[FieldError]) -> str:
    return "; ".join(f"{e.field}: {e.message}" for e in errors[:5])


class Problems:
    """Gathers the problems of one request so that one 422 names them all: the shape, the
    lookups, the rules between fields, the data scope.

        problems = Problems()
        with problems.collect():
            check_timing(...)          # raises ValidationFailed
        with problems.collect():
            await check_recipients(...)
        problems.raise_if_any()

    A refusal (a 403) is kept aside while the checks go on: invalid input is answered first
    (422), then the refusal. Ids outside the caller's data scope (403 `scope-exceeded`) are
    both: with other problems they are one more entry of the 422 (naming the field and the
    ids); alone they stay the 403 they always were."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self._scope_errors: list[FieldError] = []
        self._scope: AppError | None = None
        self._refusal: AppError | None = None

    def add(self, error: FieldError) -> None:
        if error not in self.errors:
            self.errors.append(error)

    @contextmanager
    def collect(self) -> Iterator[None]:
        try:
            yield
        except ValidationFailed as exc:
            for error in exc.errors or [FieldError(field="body", message=str(exc))]:
                self.add(error)
        except Forbidden as exc:
            if exc.code == "scope-exceeded" and exc.errors:
                self._scope = self._scope or exc
                for error in exc.errors:
                    self.add(error)
                    self._scope_errors.append(error)
            else:
                self._refusal = self._refusal or exc

    @property
    def invalid(self) -> bool:
        """Whether there is a problem besides the data scope."""
        return any(e not in self._scope_errors for e in self.errors)

    def raise_invalid(self) -> None:
        """The 422 when there is a problem besides the data scope (naming the scope's too)."""
        if self.invalid:
            raise ValidationFailed.of(self.errors)

    def raise_if_any(self) -> None:
        self.raise_invalid()
        if self._refusal is not None:
            raise self._refusal
        if self._scope is not None:
            raise self._scope


def problem_body(
    *,
    status: int,
    code: str,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The RFC 9457 body every error answer carries (the handlers, and the answers given
    before a request reaches the app: 413, 431). The title is the registered one of the code."""
    body: dict[str, Any] = {
        "type": f"{ERROR_TYPE_BASE}{code}",
        "title": title_of(code, title or "Error"),
        "status": status,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if detail:
        body["detail"] = detail
    if request_id:
        body["requestId"] = request_id
    if errors:
        body["errors"] = [e.model_dump(exclude_none=True) for e in errors]
    if extra:
        body.update(extra)
    return body


def _loc_to_field(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc)


def validation_errors(raw: Sequence[Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for err in raw:
        ctx = err.get("ctx") or {}
        allowed = ctx.get("allowed")
        message = str(err.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        errors.append(
            FieldError(
                field=_loc_to_field(err.get("loc", ())),
                message=message,
                type=str(err.get("type", "invalid")),
                allowed=list(allowed) if isinstance(allowed, list | tuple) else None,
            )
        )
    return errors


PROBLEM_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, expired or invalid bearer token",
    403: "The caller may not do this, or asked for data outside its scope",
    404: "Not found (or not visible to the caller)",
    409: "Conflict with the current state",
    410: "Gone (expired)",
    412: "The If-Match version is stale",
    413: "Request body too large",
    415: "The body is not sent as `application/json`",
    416: "The Range names no byte of the file; `Content-Range: bytes */<size>` gives its size",
    422: "Invalid input; `errors` names every problem found, each with its field and code",
    429: "Too many active jobs; see Retry-After",
    503: "A backing service is unavailable, or the request could not be served in time",
}


# Error responses to document on routes, keyed by status.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": Problem, "description": PROBLEM_DESCRIPTIONS[s], "content": {PROBLEM_JSON: {}}}
        for s in statuses
    }
