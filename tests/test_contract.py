"""The committed contract equals what the app serves; settings are all documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from app.config import Settings
from app.main import create_app
from app.reports.formats import FORMATS
from scripts.export_openapi import OPENAPI, current_openapi, render
from tests.helpers.api import api_client

ROOT = Path(__file__).resolve().parents[1]


def test_committed_openapi_matches_the_app() -> None:
    assert OPENAPI.exists(), "openapi.json is missing: run `make openapi`"
    assert OPENAPI.read_text() == render(current_openapi()), (
        "openapi.json differs from what the app serves: run `make openapi` and commit it"
    )


def test_operation_ids_are_unique_and_readable() -> None:
    schema = json.loads(OPENAPI.read_text())
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert all(i.replace("_", "").isalnum() and i.islower() for i in ids), ids


def test_every_setting_is_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    names = {
        line.split("=", 1)[0]
        for line in text.splitlines()
        if "=" in line and not line.startswith("#")
    }
    missing = {f.upper() for f in Settings.model_fields} - names
    assert not missing, f"settings missing from .env.example: {sorted(missing)}"


def test_compose_file_describes_the_stack() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"mongo", "redis", "minio", "api", "worker"} <= set(services)
    assert services["mongo"]["image"].startswith("mongo:8")
    assert "--replSet" in services["mongo"]["command"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["worker"]["command"][-2:] == ["-m", "worker"]
    for name in ("mongo", "redis", "minio", "api", "worker"):
        assert "healthcheck" in services[name], name
    scale_members = {"mongo-1-data", "mongo-2-data", "mongo-3-data"}  # the `scale` profile
    assert set(compose["volumes"]) == {"mongo-data", "redis-data", "minio-data", *scale_members}


def _schema_has_examples(
    schema: dict[str, object], components: dict[str, dict[str, object]]
) -> bool:
    if "examples" in schema or "example" in schema:
        return True
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _schema_has_examples(components[ref.rsplit("/", 1)[-1]], components)
    options = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf") or []
    assert isinstance(options, list)
    return any(_schema_has_examples(o, components) for o in options)


def test_the_contract_lists_the_40_report_endpoints_each_with_examples() -> None:
    schema = json.loads(OPENAPI.read_text())
    components = schema["components"]["schemas"]
    groups: dict[str, int] = {}
    missing_examples = []
    for path, operations in schema["paths"].items():
        parts = path.split("/")
        group = parts[4] if path.startswith("/api/v1/reports/") else parts[-1]
        for method, operation in operations.items():
            groups[group] = groups.get(group, 0) + 1
            body = operation.get("requestBody")
            if body:
                content = body["content"]["application/json"]
                if not (
                    "examples" in content or _schema_has_examples(content["schema"], components)
                ):
                    missing_examples.append(f"{method.upper()} {path}")
            for status, response in operation["responses"].items():
                assert response.get("description"), f"{method} {path} {status} undocumented"
    # The 29 of the specification, plus the operators' two (the audit trail, changing a
    # lookup value), delivery's seven (the deliveries list, delivery link, resend, webhook
    # endpoints x3, delivery options), the list of error codes, deleting a webhook endpoint and
    # a report's data as JSON (the preview, a job's rows) and a template's versions (their
    # list and one of them).
    groups_of = ("jobs", "templates", "schedules", "metadata", "audit", "deliveries", "webhooks")
    assert {k: groups[k] for k in groups_of} == {
        "jobs": 7,
        "templates": 7 + 2,
        # evaluate (what a run now would measure and send), test (to the caller), audience
        "schedules": 9 + 1 + 2,
        "metadata": 7 + 1 + 1 + 1,
        "audit": 1,
        "deliveries": 3,
        "webhooks": 4,
    }
    assert groups["learning-events"] == 1 and groups["batch"] == 1 and groups["preview"] == 1
    # A schedule e-mail's unsubscribe link (its page and the one-click POST) and what one
    # person receives.
    assert groups["unsubscribe"] == 2 and groups["recipients"] == 1
    assert {"healthz", "readyz", "metrics"} <= set(groups)
    assert sum(groups.values()) == 29 + 2 + 7 + 2 + 3 + 1 + 1 + 2 + 2 + 1 + 3 + 2
    assert not missing_examples, missing_examples


def test_downloads_document_the_content_type_of_every_format() -> None:
    """The media types come from the format registry: a new format is in the contract at once."""
    paths = json.loads(OPENAPI.read_text())["paths"]
    served = {spec.content_type for spec in FORMATS.values()}
    assert {"text/csv; charset=utf-8", "application/pdf"} <= served
    assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in served
    job_download = paths["/api/v1/reports/jobs/{job_id}/download"]["get"]["responses"]
    link_download = paths["/api/v1/reports/deliveries/{token}"]["get"]["responses"]
    for responses in (job_download, link_download):
        assert set(responses["200"]["content"]) == served
        assert "Content-Disposition" in responses["200"]["headers"]
    redirect = job_download["302"]
    assert "Location" in redirect["headers"]
    assert all(content_type in redirect["description"] for content_type in served)


async def test_every_405_lists_exactly_the_methods_its_path_answers(settings: Settings) -> None:
    """For every path of the contract and every method it lacks: 405 with `Allow` naming the
    methods the contract gives that path (the path's other routes included)."""
    paths = json.loads(OPENAPI.read_text())["paths"]
    app = create_app(settings)  # routing only: nothing is connected
    async with api_client(app) as client:
        for path, operations in paths.items():
            url = re.sub(r"\{[^}]+\}", "x", path)
            documented = {m.upper() for m in operations}
            for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - documented):
                answer = await client.request(method, url)
                assert answer.status_code == 405, (method, url)
                assert answer.headers["content-type"] == "application/problem+json"
                allow = {m.strip() for m in answer.headers["allow"].split(",")}
                assert allow == documented, (method, url, answer.headers["allow"])
