"""Domain errors and the one place that turns every error into RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.common.http import read_request_id
from app.runtime import deadline

PROBLEM_JSON = "application/problem+json"
_BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's wording
log = structlog.get_logger(__name__)


class FieldError(BaseModel):
    """One invalid input: where it is, why it is wrong, and what is allowed."""

    field: str = Field(
        description="Dotted path to the offending input, e.g. `body.parameters.from`"
    )
    message: str
    type: str = Field(default="invalid", description="Machine-readable reason")
    allowed: list[str] | None = Field(default=None, description="Allowed values, when a finite set")


class Problem(BaseModel):
    """An error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str = Field(description="Stable machine-readable error code")
    instance: str | None = None
    request_id: str | None = Field(default=None, alias="requestId")
    errors: list[FieldError] | None = None

    model_config = {"populate_by_name": True}


class AppError(Exception):
    status: int = 500
    code: str = "internal-error"
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
    status, code, title = 400, "bad-request", "Bad request"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "A valid bearer token is required.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(detail, **kw)


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class Gone(AppError):
    status, code, title = 410, "gone", "Gone"


class PreconditionFailed(AppError):
    status, code, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


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


class TooManyRequests(AppError):
    status, code, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(detail, **kw)


class ServiceUnavailable(AppError):
    status, code, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(detail, **kw)


class ServiceBusy(ServiceUnavailable):
    """The request's own work could not be done in time (app/runtime/deadline.py)."""

    code, title = "service-busy", "Service busy"

    def __init__(self, detail: str, *, retry_after: int = deadline.RETRY_AFTER_SECONDS) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://errors.report-system.dev/{code}",
        "title": title,
        "status": status,
        "code": code,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    request_id = read_request_id(request)
    if request_id:
        body["requestId"] = request_id
    if errors:
        body["errors"] = [e.model_dump(exclude_none=True) for e in errors]
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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


def unsupported_body(request: Request) -> UnsupportedMediaType:
    sent = request.headers.get("content-type")
    return UnsupportedMediaType(
        f"The body must be JSON sent as `Content-Type: application/json`, not {sent!r}."
        if sent
        else "The body must be JSON sent as `Content-Type: application/json` (none was given).",
    )


def _json_error(document: Any, error: FieldError) -> FieldError | None:
    """A body that is not JSON, named by where the parser stopped (FastAPI reports the character
    offset as the second part of the location)."""
    if error.type != "json_invalid" or not isinstance(document, str):
        return None
    offset = error.field.partition(".")[2]
    position = int(offset) if offset.isdigit() else len(document)
    line = document.count("\n", 0, position) + 1
    column = position - (document.rfind("\n", 0, position) + 1) + 1
    return FieldError(
        field="body",
        message=f"the body is not valid JSON (line {line}, column {column})",
        type="json_invalid",
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            request,
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if isinstance(exc.body, bytes) and exc.body:
            # FastAPI hands a body it did not parse as JSON (another or no Content-Type) to
            # validation as bytes; that is the wrong media type, not an invalid field.
            return await _app_error(request, unsupported_body(request))
        errors = [_json_error(exc.body, e) or e for e in validation_errors(exc.errors())]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        return problem_response(
            request,
            status=422,
            code="validation-failed",
            title="Validation failed",
            detail=detail,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, AppError):
            return await _app_error(request, exc.__cause__)  # e.g. the body-size limit's 413
        if exc.status_code == 400 and exc.detail == _BODY_PARSE_ERROR:
            # FastAPI answers a body that is not even text (bad UTF-8) with a bare 400; it is
            # invalid input like any malformed JSON, so it gets the same documented 422.
            message = "the request body is not valid UTF-8 JSON"
            return problem_response(
                request,
                status=422,
                code="validation-failed",
                title="Validation failed",
                detail=f"body: {message}",
                errors=[FieldError(field="body", message=message, type="json_invalid")],
            )
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(
            request,
            status=exc.status_code,
            code=code,
            title=str(exc.detail) if exc.detail else "HTTP error",
            detail=str(exc.detail) if exc.detail else None,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(NetworkTimeout)
    @app.exception_handler(ExecutionTimeout)
    @app.exception_handler(WaitQueueTimeoutError)
    async def _mongo_slow(request: Request, exc: Exception) -> JSONResponse:
        # A database call that ran out of the request's time (pymongo.timeout), or of the
        # server's: the database is there, but too slow for this request now.
        log.warning("mongodb_too_slow", error=str(exc)[:200])
        seconds = request.app.state.settings.request_deadline_seconds
        return await _app_error(request, ServiceBusy(deadline.busy_detail(seconds)))

    @app.exception_handler(ServerSelectionTimeoutError)
    @app.exception_handler(ConnectionFailure)
    async def _mongo_down(request: Request, exc: Exception) -> JSONResponse:
        if deadline.passed():  # no server found within the time the request had left
            return await _mongo_slow(request, exc)
        log.warning("mongodb_unavailable", error=str(exc)[:200])
        return problem_response(
            request,
            status=503,
            code="database-unavailable",
            title="Service unavailable",
            detail="The database is not reachable right now; try again shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("redis_unavailable", error=str(exc)[:200])
        return problem_response(
            request,
            status=503,
            code="queue-unavailable",
            title="Service unavailable",
            detail="The job queue is not reachable right now; try again shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error")
        return problem_response(
            request,
            status=500,
            code="internal-error",
            title="Internal error",
            detail="An unexpected error occurred; it has been logged with this request id.",
        )


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
    422: "Invalid input; `errors` names each field and why",
    429: "Too many active jobs; see Retry-After",
    503: "A backing service is unavailable, or the request could not be served in time",
}


# Error responses to document on routes, keyed by status.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": Problem, "description": PROBLEM_DESCRIPTIONS[s], "content": {PROBLEM_JSON: {}}}
        for s in statuses
    }


_SCHEMAS = "#/components/schemas/"
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def document_problems(openapi: dict[str, Any]) -> None:
    """Declares every error response of `openapi` as what the handlers above send:
    `application/problem+json` with the `Problem` schema (FastAPI documents a route's responses
    under its own media type, and adds its `HTTPValidationError` 422 to every route with
    parameters). Operations taking a JSON body also document the 415 for another media type.
    Error bodies of their own (the readiness report) stay as declared."""
    problem = {PROBLEM_JSON: {"schema": {"$ref": f"{_SCHEMAS}Problem"}}}
    replaced = {f"{_SCHEMAS}{name}" for name in ("Problem", *_FASTAPI_VALIDATION)}
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            responses: dict[str, Any] = operation.get("responses", {})
            for status, response in responses.items():
                if not status.startswith(("4", "5")):
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None and schema.get("$ref") not in replaced:
                    continue
                response["content"] = problem
                if status == "422":
                    response["description"] = PROBLEM_DESCRIPTIONS[422]
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body and "415" not in responses:
                responses["415"] = {"description": PROBLEM_DESCRIPTIONS[415], "content": problem}
                operation["responses"] = dict(sorted(responses.items()))
    schemas = openapi.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
