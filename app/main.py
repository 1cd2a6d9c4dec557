"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute, APIRouter

from app.apidocs import install_docs
from app.audit.middleware import AuditMiddleware
from app.audit.router import router as audit_router
from app.config import Settings
from app.contract import ReportApi
from app.documents import DOCUMENTS
from app.error_handlers import UnexpectedErrorMiddleware, install_error_handlers
from app.health.router import router as health_router
from app.learning_events.router import router as learning_events_router
from app.lookup_sources import provide_lookup_sources
from app.lookups import validation
from app.lookups.router import router as lookups_router
from app.lookups.seed import seed_lookups
from app.observability import BodySizeLimitMiddleware, RequestContextMiddleware, configure_logging
from app.reports.deliveries.router import router as deliveries_router
from app.reports.jobs.router import router as jobs_router
from app.reports.metadata.router import router as metadata_router
from app.reports.previews.router import router as previews_router
from app.reports.reading.preference import use_report_reads
from app.reports.schedules.optout_router import router as optout_router
from app.reports.schedules.router import router as schedules_router
from app.reports.schedules.trial_router import router as trial_router
from app.reports.templates import versions as template_versions
from app.reports.templates.router import router as templates_router
from app.runtime import deadline
from app.runtime.resources import Resources

log = structlog.get_logger(__name__)

DESCRIPTION = """
Turns learning data (enrollments, course completions, quiz results, learning events) into
PDF, Excel and CSV reports: on demand, from saved templates and on recurring schedules.

* Authenticate with `Authorization: Bearer <JWT>` issued by the learning platform (locally:
  `make run` prints a token per demo role; see **Authorize**).
* Long-running work answers **202** with a `Location` to poll.
* Errors are `application/problem+json` (RFC 9457) with a stable `code`; validation errors
  name each field in `errors`.
"""


# What a page on another origin may send and read (bearer tokens, never cookies: so no
# credentials mode).
CORS_METHODS = ("GET", "POST", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "X-Request-ID",
)
CORS_EXPOSED_HEADERS = (
    "Location",
    "Retry-After",
    "ETag",
    "Content-Disposition",
    "Idempotent-Replayed",
    "X-Request-ID",
)
CORS_MAX_AGE_SECONDS = 600
UNDO_DRAIN_SECONDS = 5.0


def _operation_id(route: APIRoute) -> str:
    return route.name


ROUTERS: tuple[APIRouter, ...] = (
    health_router,
    learning_events_router,
    jobs_router,
    previews_router,
    templates_router,
    schedules_router,
    optout_router,
    trial_router,
    metadata_router,
    audit_router,
    lookups_router,
    deliveries_router,
)


def create_app(settings: Settings, *, resources: Resources | None = None) -> FastAPI:
    """Builds the app on `settings`: everything inside (token checks, limits, adapters) uses
    this object, never the process's environment. Pass `resources` to reuse already-open
    adapters (tests)."""
    configure_logging(settings)
    provide_lookup_sources()
    use_report_reads(settings)  # previews read where the worker's reports read

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = resources is None
        app.state.resources = resources or await Resources.open(settings, documents=DOCUMENTS)
        await _on_startup(app.state.resources)
        log.info("api_started", env=settings.app_env.value, storage=settings.storage_backend.value)
        try:
            async with validation.kept_fresh(settings.lookup_refresh_seconds):
                yield
        finally:
            await deadline.drain(UNDO_DRAIN_SECONDS)  # what unanswered requests stored
            if owned:
                await app.state.resources.close()

    app = ReportApi(
        title=settings.app_name,
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
        openapi_tags=[
            {"name": "report-jobs", "description": "Run reports and download their files"},
            {
                "name": "report-previews",
                "description": "A report's rows and figures as JSON, at once",
            },
            {"name": "report-templates", "description": "Saved, shareable report definitions"},
            {"name": "report-schedules", "description": "Recurring reports"},
            {"name": "report-metadata", "description": "What the report form needs"},
            {
                "name": "report-deliveries",
                "description": "Delivery links, resending, webhook endpoints",
            },
            {"name": "learning-events", "description": "Record learning activity"},
            {"name": "report-audit", "description": "Who did what, allowed or denied"},
            {"name": "health", "description": "Liveness, readiness, metrics"},
        ],
    )
    app.state.settings = settings
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(AuditMiddleware, settings=settings)
    install_docs(app)
    # Inside the body limit (a body over it is refused before the clock starts) and the request
    # id (its 503 names the request).
    app.add_middleware(
        deadline.RequestDeadlineMiddleware,
        seconds=settings.request_deadline_seconds,
        database_reachable=lambda: _database_reachable(app),
        unreachable_seconds=settings.mongodb_timeout_ms / 1000,
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    # Inside the request id and CORS: an unexpected error's 500 carries both.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(RequestContextMiddleware)
    # Outermost, so preflights never reach the routes and every answer (a 401, a 413, a 500)
    # carries the CORS headers a browser needs to show it to the page.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=CORS_MAX_AGE_SECONDS,
    )
    return app


def _database_reachable(app: FastAPI) -> bool:
    resources: Resources | None = getattr(app.state, "resources", None)
    return resources is None or resources.database.reachable()


async def _on_startup(resources: Resources) -> None:
    await seed_lookups()
    await template_versions.backfill()
