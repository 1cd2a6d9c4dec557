"""The template and schedule bodies in the contract, typed per report type like the job body
(`app.reports.jobs.schemas.document_job_bodies`)."""

from __future__ import annotations

from typing import Any

from app.reports.types import REPORT_TYPES
from app.reports.types.bodies import document_bodies, type_parameters


def document_template_bodies(openapi: dict[str, Any]) -> None:
    """The contract's template bodies typed per report type: `TemplateCreate` is one schema
    per type (`<Type>TemplateCreate`, with its formats and parameters schema); a change's
    `parameters` is one of the types' parameters schemas."""
    document_bodies(
        openapi,
        REPORT_TYPES,
        "TemplateCreate",
        what=lambda definition: f"Save a {definition.name} template.",
    )
    type_parameters(openapi, REPORT_TYPES, "TemplateUpdate")
    # What a template (and each of its versions) answers with: its stored parameters, one of
    # the types' parameters schemas (every field of them optional).
    type_parameters(openapi, REPORT_TYPES, "TemplateOut")
    type_parameters(openapi, REPORT_TYPES, "TemplateVersionOut")


def document_schedule_bodies(openapi: dict[str, Any]) -> None:
    """The contract's schedule bodies typed per report type: `ScheduleCreate` is one schema
    per type (`<Type>ScheduleCreate`: `reportType`, its formats and parameters schema) or a
    template's (`TemplateScheduleCreate`: `templateId`, parameters as overrides); a change's
    `parameters` is one of the types' parameters schemas."""
    document_bodies(
        openapi,
        REPORT_TYPES,
        "ScheduleCreate",
        what=lambda definition: f"Run the {definition.name} report on a recurring rule.",
        template_variant="TemplateScheduleCreate",
        template_description="Run a saved template on a recurring rule, optionally with "
        "another format or parameters merged over its own.",
    )
    type_parameters(openapi, REPORT_TYPES, "ScheduleUpdate")
    # A schedule answers with its inline parameters or its overrides of a template's: one of
    # the types' parameters schemas either way (every field of them optional).
    type_parameters(openapi, REPORT_TYPES, "ScheduleOut")
