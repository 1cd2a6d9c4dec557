"""The one place that turns every error into RFC 9457 problem+json: the exception handlers, and
the middleware that answers an unexpected exception inside the CORS layer (so a browser can
read a 500 too)."""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    PROBLEM_JSON,
    AppError,
    FieldError,
    ServiceBusy,
    UnsupportedMediaType,
    problem_body,
    read_request_id,
    summary,
    validation_errors,
)
from app.runtime import deadline
from app.runtime.body_checks import domain_problems, merged

_BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's wording
_UNEXPECTED = "An unexpected error occurred; it has been logged with this request id."
log = structlog.get_logger(__name__)


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str | None = None,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(
        status=status,
        code=code,
        title=title,
        detail=detail,
        instance=request.url.path,
        request_id=read_request_id(request),
        errors=errors,
        extra=extra,
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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


class UnexpectedErrorMiddleware:
    """Answers an exception no handler took with a 500 problem. It sits inside the CORS and
    request-id middleware (Starlette's own last-resort handler sits outside them all), so the
    500 carries `Access-Control-Allow-Origin` and `X-Request-ID` like any other answer and a
    page on another origin can read it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled_error")
            if started:
                raise  # the answer is on its way: nothing else can be said
            request_id = scope.get("state", {}).get("request_id")
            body = json.dumps(
                problem_body(
                    status=500,
                    code="server-error",
                    detail=_UNEXPECTED,
                    instance=scope.get("path"),
                    request_id=request_id if isinstance(request_id, str) else None,
                )
            ).encode()
            headers = [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})


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
        # The endpoint's own checks of the parts that parsed: one 422 names every problem.
        shape = [tuple(e.get("loc", ())) for e in exc.errors()]
        errors = merged(errors, await domain_problems(request, exc.body, shape))
        return problem_response(
            request, status=422, code="validation-failed", detail=summary(errors), errors=errors
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
                detail=f"body: {message}",
                errors=[FieldError(field="body", message=message, type="json_invalid")],
            )
        code = {404: "route-not-found", 405: "method-not-allowed"}.get(
            exc.status_code, "request-invalid"
        )
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allow = allowed_methods(request, (headers or {}).get("Allow"))
            headers = {**(headers or {}), **({"Allow": allow} if allow else {})}
        return problem_response(
            request,
            status=exc.status_code,
            code=code,
            detail=str(exc.detail) if exc.detail else None,
            headers=headers,
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
            detail="The job queue is not reachable right now; try again shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reached only by an error outside UnexpectedErrorMiddleware (the outer middleware).
        log.exception("unhandled_error")
        return problem_response(request, status=500, code="server-error", detail=_UNEXPECTED)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def allowed_methods(request: Request, given: str | None) -> str | None:
    """Every method the request's path answers, for a 405's `Allow` (Starlette names only the
    methods of the first route matching the path, not those of its other routes). A mounted
    app (the docs' static files) keeps the `Allow` it gave."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    methods = [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    return ", ".join(methods) if methods else given
