"""Error responses in the contract: every 4xx / 5xx is `application/problem+json` with the
`Problem` schema."""

from __future__ import annotations

from typing import Any

from app.errors import PROBLEM_DESCRIPTIONS, PROBLEM_JSON

_SCHEMAS = "#/components/schemas/"
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def document_problems(openapi: dict[str, Any]) -> None:
    """Declares every error response of `openapi` as what the handlers above send:
    `application/problem+json` with the `Problem` schema (FastAPI documents a route's responses
    under its own media type, and adds its `HTTPValidationError` 422 to every route with
    parameters). Operations taking a JSON body also document the 415 for another media type.
    Error bodies of their own (the readiness report) stay as declared."""

    def problem() -> dict[str, Any]:  # one each: examples are added per response
        return {PROBLEM_JSON: {"schema": {"$ref": f"{_SCHEMAS}Problem"}}}

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
                others = {m: c for m, c in response.get("content", {}).items() if "json" not in m}
                response["content"] = {**problem(), **others}  # e.g. a page for browsers
                if status == "422":
                    response["description"] = PROBLEM_DESCRIPTIONS[422]
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body and "415" not in responses:
                responses["415"] = {"description": PROBLEM_DESCRIPTIONS[415], "content": problem()}
                operation["responses"] = dict(sorted(responses.items()))
    schemas = openapi.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
