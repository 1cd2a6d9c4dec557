"""An example on every answer of the contract: each 2xx body (from the samples of its schema,
put together for lists and pages) and each error (a problem with the code an operation
answers that status with, from the error-code registry)."""

from __future__ import annotations

import copy
import re
from typing import Any

from app.config import Settings
from app.contract.samples import CURSOR, PATH_VALUES, QUEUED_JOB, REQUEST_ID, SAMPLES
from app.error_codes import ERROR_CODES
from app.errors import PROBLEM_JSON, FieldError, problem_body
from app.reports.deliveries.schemas import DeliveryOptionsOut

_SCHEMAS = "#/components/schemas/"
_PARAMETER = re.compile(r"\{(\w+)\}")
_JOB = _SCHEMAS + "JobOut"  # a 202 shows the job as accepted: queued

# The code of an error status when the operation does not say otherwise.
BY_STATUS = {
    400: "request-invalid",
    401: "authentication-required",
    403: "permission-denied",
    404: "resource-not-found",
    405: "method-not-allowed",
    409: "resource-conflict",
    410: "resource-gone",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "media-type-unsupported",
    416: "range-not-satisfiable",
    422: "validation-failed",
    429: "rate-limit-exceeded",
    503: "service-unavailable",
}
# A 404 names what the last id in the path points at.
NOT_FOUND = {
    "job_id": "job-not-found",
    "template_id": "template-not-found",
    "schedule_id": "schedule-not-found",
    "delivery_id": "delivery-not-found",
    "endpoint_id": "webhook-not-found",
    "token": "delivery-link-invalid",
    "key": "report-type-not-found",
    "category": "lookup-category-not-found",
    "code": "lookup-value-not-found",
}
# The main code of an error status where it is not the status's own (operation id, status).
MAIN_CODES = {
    ("jobs_create", 403): "scope-exceeded",
    ("jobs_create", 404): "template-not-found",
    ("jobs_create", 409): "idempotency-key-reused",
    ("jobs_create", 429): "job-quota-exceeded",
    ("jobs_create", 503): "queue-unavailable",
    ("jobs_list", 403): "filter-not-allowed",
    ("jobs_cancel", 409): "job-not-cancellable",
    ("jobs_retry", 403): "scope-exceeded",
    ("jobs_retry", 409): "job-not-retryable",
    ("jobs_retry", 429): "job-quota-exceeded",
    ("jobs_download", 403): "job-access-revoked",
    ("jobs_download", 409): "job-not-ready",
    ("jobs_download", 410): "job-expired",
    ("templates_create", 403): "template-visibility-not-allowed",
    ("templates_update", 403): "template-not-owned",
    ("templates_update", 412): "template-version-mismatch",
    ("templates_delete", 403): "template-not-owned",
    ("templates_delete", 409): "template-in-use",
    ("templates_run", 403): "scope-exceeded",
    ("templates_run", 409): "template-archived",
    ("templates_run", 429): "job-quota-exceeded",
    ("templates_run", 503): "queue-unavailable",
    ("schedules_create", 403): "report-type-not-allowed",
    ("schedules_update", 403): "scope-exceeded",
    ("schedules_pause", 409): "schedule-ended",
    ("schedules_resume", 409): "schedule-ended",
    ("schedules_run_now", 403): "schedule-owner-unavailable",
    ("schedules_run_now", 409): "schedule-broken",
    ("schedules_run_now", 429): "job-quota-exceeded",
    ("schedules_run_now", 503): "queue-unavailable",
    ("metadata_report_type", 403): "report-type-not-allowed",
    ("audit_list", 403): "admin-required",
    ("lookups_update", 403): "admin-required",
    ("lookups_update", 409): "lookup-value-structural",
    ("lookups_update", 503): "audit-unavailable",
    ("deliveries_download", 410): "delivery-link-expired",
    ("deliveries_resend", 409): "delivery-not-resendable",
    ("learning_events_create", 403): "event-user-mismatch",
    ("webhooks_delete", 409): "webhook-in-use",
}
DETAILS = {
    "authentication-required": "The token has expired.",
    "scope-exceeded": "departmentIds outside your data scope: 64b7f0c2a1b2c3d4e5f60002",
    "template-not-found": "No template with id '6650f1c2a1b2c3d4e5f60720'.",
    "idempotency-key-reused": "This Idempotency-Key was already used with a different request.",
    "job-quota-exceeded": "You already have 5 reports queued or running (limit 5); try again "
    "when one finishes.",
    "template-version-mismatch": "The template is at version 4, not 3: someone changed it "
    "since you read it. Reload it and apply your change again.",
    "job-not-ready": "The report is still running; download it once it has completed.",
}
EXTRA: dict[str, dict[str, Any]] = {
    "scope-exceeded": {"field": "departmentIds", "outOfScope": ["64b7f0c2a1b2c3d4e5f60002"]},
    "template-version-mismatch": {"currentVersion": 4},
}
# Every problem of one request in one 422 (operation id → errors).
VALIDATION = {
    "jobs_create": [
        FieldError(
            field="parameters.dateRange.to",
            message="must be on or after from (2026-03-01)",
            type="value_error",
        ),
        FieldError(
            field="parameters.statuses.0",
            message="'half-done' is not a enrollment-status code; allowed: enrolled, "
            "in-progress, completed, failed, withdrawn",
            type="lookup_code",
            allowed=["enrolled", "in-progress", "completed", "failed", "withdrawn"],
        ),
        FieldError(
            field="parameters.departmentIds",
            message="outside your data scope: 64b7f0c2a1b2c3d4e5f60002",
            type="scope-exceeded",
        ),
    ],
    "schedules_create": [
        FieldError(
            field="body.timeOfDay",
            message="not used with frequency cron",
            type="not_allowed",
        ),
        FieldError(
            field="body.cronExpression",
            message="'61 7 * * 1-5' is not a valid cron expression",
        ),
        FieldError(
            field="body.parameters.departmentIds",
            message="outside your data scope: 64b7f0c2a1b2c3d4e5f60002",
            type="scope-exceeded",
        ),
        FieldError(
            field="body.recipients.0",
            message="'ops@elsewhere.org': the domain 'elsewhere.org' may not receive reports "
            "(see ALLOWED_RECIPIENT_DOMAINS)",
            type="domain-not-allowed",
        ),
    ],
}


def computed_samples() -> dict[str, Any]:
    """Samples of answers that follow the settings (the defaults)."""
    options = DeliveryOptionsOut.from_settings(Settings())
    return {"DeliveryOptionsOut": options.model_dump(mode="json", by_alias=True)}


def example_of(schema: dict[str, Any], schemas: dict[str, Any], samples: dict[str, Any]) -> Any:
    """An example value of `schema`: a sample when there is one, else built from its parts."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix(_SCHEMAS)
        if name in samples:
            return copy.deepcopy(samples[name])
        return example_of(schemas[name], schemas, samples)
    for key in ("examples", "example"):
        if key in schema:
            return schema[key][0] if key == "examples" else schema[key]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        chosen = next((o for o in options if o.get("type") != "null"), options[0])
        return example_of(chosen, schemas, samples)
    kind = schema.get("type")
    if kind == "array":
        return [example_of(schema.get("items", {}), schemas, samples)]
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if set(properties) == {"items", "nextCursor", "total"}:  # a page
            items = example_of(properties["items"], schemas, samples)
            return {"items": items, "nextCursor": CURSOR, "total": 42}
        return {name: example_of(p, schemas, samples) for name, p in properties.items()}
    if "default" in schema:
        return schema["default"]
    return {"string": "…", "integer": 1, "number": 1.5, "boolean": True}.get(str(kind))


def _instance(path: str) -> str:
    return _PARAMETER.sub(lambda m: PATH_VALUES.get(m.group(1), m.group(1)), path)


def main_code(operation_id: str, path: str, status: int) -> str:
    if (operation_id, status) in MAIN_CODES:
        return MAIN_CODES[(operation_id, status)]
    parameters = _PARAMETER.findall(path)
    if status == 404 and parameters and parameters[-1] in NOT_FOUND:
        return NOT_FOUND[parameters[-1]]
    return BY_STATUS.get(status, "server-error")


def _field_errors(operation: dict[str, Any]) -> list[FieldError]:
    if operation["operationId"] in VALIDATION:
        return VALIDATION[operation["operationId"]]
    query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
    if "cursor" in query:
        return [FieldError(field="query.cursor", message="not a valid cursor")]
    if "limit" in query:
        return [
            FieldError(
                field="query.limit",
                message="Input should be less than or equal to 100",
                type="less_than_equal",
            )
        ]
    if "requestBody" in operation:
        return [FieldError(field="body", message="Field required", type="missing")]
    return [
        FieldError(field=f"path.{p['name']}", message="not a valid id")
        for p in operation.get("parameters", [])[:1]
    ]


def problem_example(operation: dict[str, Any], path: str, status: int) -> dict[str, Any]:
    code = main_code(operation["operationId"], path, status)
    entry = ERROR_CODES[code]
    errors = _field_errors(operation) if status == 422 else None
    detail = DETAILS.get(code, entry.when)
    if errors:
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return problem_body(
        status=status,
        code=code,
        detail=detail,
        instance=_instance(path),
        request_id=REQUEST_ID,
        errors=errors,
        extra=EXTRA.get(code),
    )


def document_examples(openapi: dict[str, Any]) -> None:
    """Puts an `example` on every JSON answer of every operation."""
    schemas: dict[str, Any] = openapi["components"]["schemas"]
    samples = {**SAMPLES, **computed_samples()}
    for path, item in openapi.get("paths", {}).items():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                content: dict[str, Any] = response.get("content", {})
                for media, body in list(content.items()):
                    if media == PROBLEM_JSON:
                        example = problem_example(operation, path, int(status))
                    elif media == "text/html" or "example" in body:
                        continue
                    elif media == "application/json" and "schema" in body:
                        accepted = status == "202" and body["schema"] == {"$ref": _JOB}
                        example = (
                            QUEUED_JOB if accepted else example_of(body["schema"], schemas, samples)
                        )
                    else:
                        continue
                    content[media] = {**body, "example": example}
