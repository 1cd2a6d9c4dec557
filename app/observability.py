"""Structured logging (ours and the standard library's, one format), request ids and the
Prometheus metrics of the API and the worker."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.common.redaction import redact_path
from app.config import Settings
from app.errors import PayloadTooLarge, problem_body

REQUEST_ID_HEADER = "x-request-id"

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Worker metrics (served by the worker on WORKER_METRICS_PORT; see docs/operations.md).
JOBS_FINISHED = Counter(
    "report_jobs_finished_total",
    "Report jobs finished, by report type, format and outcome",
    ["report_type", "format", "outcome"],
)
JOB_ROWS = Counter("report_rows_written_total", "Rows written into report files", ["format"])
JOB_ROW_COUNT = Histogram(
    "report_job_rows",
    "Rows per report file",
    ["report_type", "format"],
    buckets=(0, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000),
)
JOB_DURATION = Histogram(
    "report_job_duration_seconds",
    "Report job run time (one attempt)",
    ["report_type", "format"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)
JOBS_ACTIVE = Gauge("report_jobs_running", "Report jobs running in this process")
QUEUE_DEPTH = Gauge("report_queue_depth", "Queued report jobs (all workers; retries included)")
QUEUE_OLDEST_AGE = Gauge(
    "report_queue_oldest_age_seconds", "Age of the oldest queued report job (0: queue empty)"
)
JOBS_LEASED = Gauge("report_jobs_leased", "Report jobs running on any worker")
LEASE_TAKEOVERS = Counter(
    "report_job_lease_takeovers_total", "Jobs requeued because their worker's lease expired"
)
JOB_RETRIES = Counter("report_job_retries_total", "Failed attempts queued again for a retry")
SCHEDULER_LAG = Histogram(
    "report_scheduler_lag_seconds",
    "From a schedule's fire time to its job's creation",
    buckets=(0.5, 1, 5, 15, 30, 60, 120, 300, 900, 3600),
)
SCHEDULE_FAILURES = Counter("report_schedule_failures_total", "Scheduled runs that failed")
SCHEDULE_AUTO_PAUSES = Counter(
    "report_schedule_auto_pauses_total", "Schedules that paused themselves"
)
ALERT_EVALUATIONS = Counter(
    "report_alert_evaluations_total",
    "Scheduled runs whose alert was evaluated, by report type and the alert's state "
    "(fired, still-firing, recovered, not-met)",
    ["report_type", "state"],
)
CHANGE_EVALUATIONS = Counter(
    "report_change_evaluations_total",
    "Scheduled runs of change-report schedules whose comparison with their last delivered run "
    "was committed, by report type and outcome (first-run, changed, unchanged)",
    ["report_type", "outcome"],
)
CHANGE_REPORTS = Counter(
    "report_change_reports_total",
    "Scheduled runs compared with their last delivered run, by report type and what they "
    "found (first-run, changed, unchanged) and whether they became the baseline (moved)",
    ["report_type", "found", "moved"],
)
DELIVERIES = Counter(
    "report_deliveries_total", "Delivery attempts by channel and outcome", ["channel", "outcome"]
)
# report_render_process_restarts_total lives with the render processes
# (app/reports/rendering/pdf/processes.py), which must not import the web stack.


def observe_job(report_type: str, fmt: str, outcome: str, seconds: float) -> None:
    JOBS_FINISHED.labels(report_type, fmt, outcome).inc()
    JOB_DURATION.labels(report_type, fmt).observe(seconds)


def observe_rows(report_type: str, fmt: str, rows: int) -> None:
    JOB_ROWS.labels(fmt).inc(rows)
    JOB_ROW_COUNT.labels(report_type, fmt).observe(rows)


_HANDLER_MARK = "_report_system_handler"
NOISY_LOGGERS = ("pymongo", "botocore", "aiobotocore", "fontTools", "weasyprint", "urllib3")
# Loggers that install handlers of their own: their lines go through the root's formatter.
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "arq.worker")


def _access_fields(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Uvicorn's access line as fields: client, method, path, status."""
    record = event_dict.get("_record")
    args = event_dict.pop("positional_args", None)  # the record's own args are cleared by then
    is_access = record is not None and record.name == "uvicorn.access"
    if is_access and isinstance(args, tuple) and len(args) == 5:
        client, method, path, http_version, status = args
        event_dict.update(
            event="http_access",
            client=client,
            method=method,
            path=redact_path(str(path)),
            http_version=http_version,
            status=status,
        )
    return event_dict


def configure_logging(settings: Settings) -> None:
    """structlog for our own events; the standard library's records (arq, uvicorn, the queue
    module) go through the same processors and renderer via `ProcessorFormatter`, so production
    logs are JSON end to end, each line with the request or job id bound at the time."""
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        pass_foreign_args=True,
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, _access_fields],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)  # ours from an earlier call; others' (a test runner's) stay
    root.addHandler(handler)
    root.setLevel(level)
    for name in ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Gives every request an id (taken from X-Request-ID when sane), binds it to the logs,
    echoes it in the response and records metrics by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode())
        request_id = new_request_id()
        if incoming:
            candidate = incoming.decode("latin-1")
            if 0 < len(candidate) <= 64 and all(c.isalnum() or c in "-_." for c in candidate):
                request_id = candidate
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(method, template, str(status_holder["status"])).inc()
            HTTP_LATENCY.labels(method, template).observe(time.perf_counter() - started)


class BodySizeLimitMiddleware:
    """Refuses request bodies above a size with 413 before they are read into memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(scope, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI turns an error while reading the body into a 400 "error parsing
                    # the body" chained to this one; the error handler answers it as this 413.
                    raise PayloadTooLarge(self._detail())
            return message

        try:
            await self.app(scope, limited_receive, send)
        except PayloadTooLarge:
            await self._reject(scope, send)

    def _detail(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."

    async def _reject(self, scope: Scope, send: Send) -> None:
        body = json.dumps(
            problem_body(
                status=413,
                code="payload-too-large",
                title="Payload too large",
                detail=self._detail(),
                instance=scope.get("path"),
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
