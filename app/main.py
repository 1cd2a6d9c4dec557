"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter

from app.config import Settings, get_settings
from app.errors import install_error_handlers
from app.observability import BodySizeLimitMiddleware, RequestContextMiddleware, configure_logging
from app.runtime.resources import Resources

log = structlog.get_logger(__name__)

DESCRIPTION = """
Turns learning data (enrollments, course completions, quiz results, learning events) into
PDF, Excel and CSV reports: on demand, from saved templates and on recurring schedules.

* Authenticate with `Authorization: Bearer <JWT>` issued by the learning platform.
* Long-running work answers **202** with a `Location` to poll.
* Errors are `application/problem+json` (RFC 9457) with a stable `code`; validation errors
  name each field in `errors`.
"""


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(settings: Settings | None = None, *, resources: Resources | None = None) -> FastAPI:
    """Builds the app. Pass `resources` to reuse already-open adapters (tests)."""
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = resources is None
        app.state.resources = resources or await Resources.open(settings)
        await _on_startup(app.state.resources)
        log.info("api_started", env=settings.app_env.value, storage=settings.storage_backend.value)
        try:
            yield
        finally:
            if owned:
                await app.state.resources.close()

    app = FastAPI(
        title=settings.app_name,
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        openapi_tags=[
            {"name": "report-jobs", "description": "Run reports and download their files"},
            {"name": "report-templates", "description": "Saved, shareable report definitions"},
            {"name": "report-schedules", "description": "Recurring reports"},
            {"name": "report-metadata", "description": "What the report form needs"},
            {"name": "learning-events", "description": "Record learning activity"},
            {"name": "health", "description": "Liveness, readiness, metrics"},
        ],
    )
    install_error_handlers(app)
    for router in _routers():
        app.include_router(router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app


async def _on_startup(resources: Resources) -> None:
    from app.lookups.seed import seed_lookups

    await seed_lookups()


def _routers() -> list[APIRouter]:
    from app.health.router import router as health

    routers = [health]
    for module in (
        "app.learning_events.router",
        "app.reports.jobs.router",
        "app.reports.templates.router",
        "app.reports.schedules.router",
        "app.reports.metadata.router",
    ):
        try:
            imported = __import__(module, fromlist=["router"])
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        routers.append(imported.router)
    return routers
