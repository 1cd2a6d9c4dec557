"""Every operation of the committed contract shows an example of each answer that validates
against the answer's schema (errors: a problem with a registered code of that status), and
documents the response headers the running API sends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from app.contract.examples import MAIN_CODES
from app.error_codes import ERROR_CODES
from tests.helpers.tokens import TokenFactory

CONTRACT = json.loads((Path(__file__).resolve().parents[1] / "openapi.json").read_text())
SCHEMAS = CONTRACT["components"]["schemas"]
HEADERS = ("Location", "ETag", "Retry-After", "Idempotent-Replayed", "X-Request-ID")
JOBS = "/api/v1/reports/jobs"
TEMPLATES = "/api/v1/reports/templates"


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """The schema with the contract's components beside it, so its `#/components/...` refs
    resolve."""
    return Draft202012Validator({**schema, "components": CONTRACT["components"]})


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in CONTRACT["paths"].items()
        for method, operation in item.items()
    ]


def test_every_answer_has_an_example_that_fits_its_schema() -> None:
    checked = 0
    for method, path, operation in operations():
        for status, response in operation["responses"].items():
            for media, body in response.get("content", {}).items():
                if "json" not in media or "schema" not in body:
                    continue
                if body["schema"].get("format") == "binary":
                    continue  # a file (a JSON Lines download), not a JSON answer
                where = f"{method} {path} {status} {media}"
                assert "example" in body, f"{where}: no example"
                errors = sorted(_validator(body["schema"]).iter_errors(body["example"]), key=str)
                assert not errors, f"{where}: {errors[0].message} at {list(errors[0].path)}"
                checked += 1
                if media == "application/problem+json":
                    entry = ERROR_CODES[body["example"]["code"]]
                    assert entry.status == int(status), where
    assert checked > 180


def test_the_main_error_codes_name_real_operations_and_statuses() -> None:
    declared = {
        (operation["operationId"], int(status))
        for _, _, operation in operations()
        for status in operation["responses"]
    }
    for (operation_id, status), code in MAIN_CODES.items():
        assert (operation_id, status) in declared, (operation_id, status)
        assert ERROR_CODES[code].status == status, code
    # The showcase 422s name several independent problems at once.
    job = CONTRACT["paths"][JOBS]["post"]["responses"]["422"]["content"]
    assert len(job["application/problem+json"]["example"]["errors"]) == 3


def test_every_answer_documents_its_headers() -> None:
    for method, path, operation in operations():
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            assert "X-Request-ID" in headers, (method, path, status)
            if status in ("429", "503") or status.startswith("3"):
                expected = "Retry-After" if not status.startswith("3") else "Location"
                assert expected in headers, (method, path, status)


def _documented(method: str, path: str, status: int) -> set[str]:
    response = CONTRACT["paths"][path][method.lower()]["responses"][str(status)]
    return set(response.get("headers", {}))


async def test_the_headers_sent_are_the_documented_ones(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    headers = auth("admin")
    job = {
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "last-30-days"}},
    }
    template = {"name": "Monthly", "reportType": "learner-progress", "format": "csv"}
    keyed = {**headers, "Idempotency-Key": "contract-headers-1"}
    calls: list[tuple[str, str, httpx.Response]] = []
    calls.append(("POST", JOBS, await client.post(JOBS, json=job, headers=keyed)))
    calls.append(("POST", JOBS, await client.post(JOBS, json=job, headers=keyed)))
    created = await client.post(TEMPLATES, json=template, headers=headers)
    calls.append(("POST", TEMPLATES, created))
    one = f"{TEMPLATES}/{{template_id}}"
    url = f"{TEMPLATES}/{created.json()['id']}"
    calls.append(("GET", one, await client.get(url, headers=headers)))
    stale = {**headers, "If-Match": '"7"'}
    calls.append(("PATCH", one, await client.patch(url, json={"name": "x"}, headers=stale)))
    calls.append(("GET", JOBS, await client.get(JOBS)))
    statuses = [response.status_code for _, _, response in calls]
    assert statuses == [202, 200, 201, 200, 412, 401], statuses
    for method, path, response in calls:
        sent = {h for h in HEADERS if h in response.headers}
        assert "X-Request-ID" in sent
        missing = sent - _documented(method, path, response.status_code)
        assert not missing, (method, path, response.status_code, missing)
    assert {"Location", "Idempotent-Replayed"} <= _documented("POST", JOBS, 200)
    assert {"Location", "ETag"} <= _documented("POST", TEMPLATES, 201)
