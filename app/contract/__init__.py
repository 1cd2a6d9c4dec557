"""The OpenAPI document the app serves: FastAPI's, completed where FastAPI cannot say it
itself, so clients generated from it are typed end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

from app.contract.bodies import document_schedule_bodies, document_template_bodies
from app.contract.examples import document_examples
from app.contract.headers import document_headers
from app.contract.problems import document_problems
from app.reports.jobs.schemas import document_job_bodies
from app.reports.types import REPORT_TYPES

_SCHEMAS = "#/components/schemas/"


class ReportApi(FastAPI):
    """FastAPI whose contract declares error bodies as problem+json (`document_problems`),
    the job, template and schedule bodies per report type, request defaults as optional
    (`optional_request_defaults`), the response headers (`document_headers`) and an example
    on every answer (`document_examples`)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = super().openapi()
            document_problems(document)
            document_job_bodies(document)
            document_template_bodies(document)
            document_schedule_bodies(document)
            optional_request_defaults(document, as_sent=parameter_schemas())
            document_headers(document)
            document_examples(document)
        return super().openapi()  # the document just completed, cached


def _refs(node: Any) -> Iterator[str]:
    """The component schemas `node` refers to."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMAS):
            yield ref.removeprefix(_SCHEMAS)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _reachable(roots: Any, schemas: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = list(_refs(roots))
    while todo:
        name = todo.pop()
        if name not in seen and name in schemas:
            seen.add(name)
            todo.extend(_refs(schemas[name]))
    return seen


def optional_request_defaults(
    openapi: dict[str, Any], as_sent: frozenset[str] = frozenset()
) -> None:
    """Moves the defaults of the schemas only requests use into their descriptions.

    The server fills a default in when the field is left out, so a client may leave it out;
    but generators read `default` as "always present" (right for a response), which would make
    a TypeScript client demand every defaulted field of a request body. The schemas responses
    use keep their defaults, but for those named in `as_sent`: a response carries them as the
    request sent them (a template's or schedule's stored parameters), defaults not filled in."""
    schemas: dict[str, Any] = openapi.get("components", {}).get("schemas", {})
    operations = [op for item in openapi.get("paths", {}).values() for op in item.values()]
    requests = _reachable([op.get("requestBody", {}) for op in operations], schemas)
    responses = _reachable([op.get("responses", {}) for op in operations], schemas)
    for name in sorted(requests - (responses - as_sent)):
        for prop in schemas[name].get("properties", {}).values():
            if "default" not in prop:
                continue
            default = prop.pop("default")
            if default is None:
                continue  # optional and null mean the same here
            shown = default if isinstance(default, str) else json.dumps(default, ensure_ascii=False)
            said = f"Default: `{shown}`."
            prop["description"] = (
                f"{prop['description'].rstrip('.')}. {said}" if prop.get("description") else said
            )


def parameter_schemas() -> frozenset[str]:
    """The report types' parameters schemas: stored and answered as they were sent."""
    return frozenset(REPORT_TYPES[key].parameters_model.__name__ for key in REPORT_TYPES)
