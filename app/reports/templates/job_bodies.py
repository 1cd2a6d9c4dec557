"""The body of `POST /jobs` and `POST /preview` (`JobCreate`) as the request it asks for: a
report type with its parameters, or a template with overrides merged over its own."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from app.reports.deliveries.models import DeliveryConfig
from app.reports.jobs.models import FileOptions
from app.reports.jobs.requests import ReportRequest, prefixed_fields
from app.reports.jobs.schemas import JobCreate
from app.reports.templates.schemas import TemplateRun
from app.reports.templates.service import template_request
from app.security import Principal

_SOURCE = ("template_id", "report_type")
# Which fields the checks of a body read together (`app.runtime.body_checks`): the report
# type (or the template) decides what its format, parameters and columns may be; the columns
# depend on the shape the parameters select; the CSV separators on the locale.
JOB_BODY_DEPENDS: dict[str, tuple[str, ...]] = {
    "report_type": ("template_id",),
    "format": _SOURCE,
    "parameters": _SOURCE,
    "columns": (*_SOURCE, "parameters"),
    "options": ("template_id", "locale"),
}
# A request without a template needs a format; one set aside for its shape is judged by none.
JOB_BODY_STAND_INS = {"format": "csv"}


async def body_request(
    principal: Principal,
    body: JobCreate,
    *,
    options: FileOptions | None = None,
    idempotency_key: str | None = None,
    request_id: str | None = None,
    delivery: DeliveryConfig | None = None,
) -> ReportRequest:
    """What the body asks for: its report type, format and parameters, or its template's with
    the overrides merged (a template that is not visible is a 404, an archived one a 409)."""
    if body.template_id:
        run = TemplateRun(
            parameters=body.parameters, format=body.format, locale=body.locale, columns=body.columns
        )
        return await template_request(
            principal,
            body.template_id,
            run,
            idempotency_key=idempotency_key,
            request_id=request_id,
            delivery=delivery,
            options=options,
        )
    assert body.report_type and body.format  # checked by JobCreate
    return ReportRequest(
        report_type=body.report_type,
        format=body.format,
        parameters=body.parameters or {},
        options=options,
        locale=body.locale,
        columns=tuple(body.columns) if body.columns is not None else None,
        idempotency_key=idempotency_key,
        request_id=request_id,
        delivery=delivery,
    )


def body_fields(body: JobCreate) -> AbstractContextManager[None]:
    """How the problems of the body's request are named: `body.…` for a template's run; an
    inline request's parameters as they always were (`parameters.…`)."""
    return prefixed_fields("body.") if body.template_id else nullcontext()
