"""What the contract tells a client, checked on the committed openapi.json and on the app:
every error is a `Problem` sent as application/problem+json (FastAPI's HTTPValidationError is
gone), bodies that are not JSON are a documented 415, malformed JSON is a 422 that says where,
the job body is typed per registered report type (an added type appears by itself), request
defaults are optional, and the docs are served without any CDN."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from app.config import Settings
from app.main import create_app
from app.reports.jobs.schemas import TEMPLATE_JOB, job_variant_name
from app.reports.types import REPORT_TYPES
from app.reports.types.bodies import variant_name
from app.runtime.resources import Resources
from tests.helpers.tokens import TokenFactory
from tests.test_extra_report_type import KEY, CourseList, course_list  # noqa: F401 (fixture)

CONTRACT = json.loads((Path(__file__).resolve().parents[1] / "openapi.json").read_text())
SCHEMAS = CONTRACT["components"]["schemas"]
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
JOBS = "/api/v1/reports/jobs"


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in CONTRACT["paths"].items()
        for method, operation in item.items()
    ]


def test_every_error_response_is_a_problem() -> None:
    assert "HTTPValidationError" not in json.dumps(CONTRACT)
    assert "ValidationError" not in SCHEMAS
    checked = 0
    for method, path, operation in operations():
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            if (method, path, status) == ("GET", "/readyz", "503"):
                continue  # the readiness report, which says which dependency is down
            schemas = {m: {"schema": c["schema"]} for m, c in response["content"].items()}
            linked = path.endswith(("/deliveries/{token}", "/unsubscribe/{token}"))
            if linked and status in ("404", "410"):  # a page too
                assert schemas.pop("text/html") == {"schema": {"type": "string"}}
            assert schemas == PROBLEM, (method, path, status)
            checked += 1
        if "requestBody" in operation:
            assert "application/json" in operation["requestBody"]["content"]
            unsupported = operation["responses"]["415"]["content"]
            assert (
                unsupported["application/problem+json"]["schema"]
                == PROBLEM["application/problem+json"]["schema"]
            ), (method, path)
    assert checked > 100
    with_path_ids = [(m, p) for m, p, _ in operations() if "{" in p]
    assert all("422" in CONTRACT["paths"][p][m.lower()]["responses"] for m, p in with_path_ids)


def test_the_job_body_is_one_schema_per_report_type_or_a_template_run() -> None:
    body = CONTRACT["paths"][JOBS]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/JobCreate"}
    variants = [v["$ref"].rsplit("/", 1)[-1] for v in SCHEMAS["JobCreate"]["oneOf"]]
    assert variants == [job_variant_name(REPORT_TYPES[k]) for k in REPORT_TYPES] + [TEMPLATE_JOB]
    for key in REPORT_TYPES:
        definition = REPORT_TYPES[key]
        variant = SCHEMAS[job_variant_name(definition)]
        assert variant["properties"]["reportType"]["const"] == key
        assert variant["properties"]["format"]["enum"] == list(definition.formats)
        assert variant["required"] == ["reportType", "format"]
        parameters = definition.parameters_model.__name__
        assert {"$ref": f"#/components/schemas/{parameters}"} in variant["properties"][
            "parameters"
        ]["anyOf"]
        served = definition.parameters_schema()  # what GET /metadata/report-types/{key} shows
        assert list(SCHEMAS[parameters]["properties"]) == list(served["properties"])
        assert SCHEMAS[parameters].get("additionalProperties") is False
    template = SCHEMAS[TEMPLATE_JOB]
    assert template["required"] == ["templateId"] and "reportType" not in template["properties"]


def test_request_defaults_are_optional_and_said_in_descriptions() -> None:
    timezone = SCHEMAS["LearnerProgressParameters"]["properties"]["timezone"]
    assert "default" not in timezone and timezone["description"].endswith("Default: `UTC`.")
    assert "timezone" not in SCHEMAS["LearnerProgressParameters"].get("required", [])
    visibility = SCHEMAS["LearnerProgressTemplateCreate"]["properties"]["visibility"]
    assert "default" not in visibility and "Default: `private`." in visibility["description"]


def test_template_and_schedule_bodies_are_typed_per_report_type() -> None:
    for body, template_variant in (("TemplateCreate", None), ("ScheduleCreate", "Template")):
        variants = [v["$ref"].rsplit("/", 1)[-1] for v in SCHEMAS[body]["oneOf"]]
        expected = [variant_name(REPORT_TYPES[k], body) for k in REPORT_TYPES]
        assert variants == expected + ([template_variant + body] if template_variant else [])
        for key in REPORT_TYPES:
            definition = REPORT_TYPES[key]
            variant = SCHEMAS[variant_name(definition, body)]
            assert variant["properties"]["reportType"]["const"] == key
            assert variant["properties"]["format"]["enum"] == list(definition.formats)
            ref = {"$ref": f"#/components/schemas/{definition.parameters_model.__name__}"}
            parameters = variant["properties"]["parameters"]
            assert ref in parameters.get("anyOf", [{"$ref": parameters.get("$ref")}]), body
            assert {"reportType", "format", "name"} <= set(variant["required"])
    schedule_from_template = SCHEMAS["TemplateScheduleCreate"]
    assert "reportType" not in schedule_from_template["properties"]
    assert schedule_from_template["required"] == ["templateId", "frequency", "name"]
    # The changes, and what templates and schedules answer with: one of the types' parameters
    # schemas, whose defaults stay optional (the stored parameters are as they were sent).
    for schema in (
        "TemplateUpdate",
        "ScheduleUpdate",
        "TemplateOut",
        "TemplateVersionOut",
        "ScheduleOut",
    ):
        options = SCHEMAS[schema]["properties"]["parameters"]["anyOf"]
        named = {o["$ref"].rsplit("/", 1)[-1] for o in options if "$ref" in o}
        assert named == {REPORT_TYPES[k].parameters_model.__name__ for k in REPORT_TYPES}
        for name in named:
            assert not any("default" in f for f in SCHEMAS[name]["properties"].values()), name


async def test_an_added_report_type_appears_in_the_contract(
    course_list: CourseList,  # noqa: F811 (the fixture registers it)
    settings: Settings,
    resources: Resources,
) -> None:
    document = create_app(settings, resources=resources).openapi()
    schemas = document["components"]["schemas"]
    name = job_variant_name(REPORT_TYPES[KEY])
    assert {"$ref": f"#/components/schemas/{name}"} in schemas["JobCreate"]["oneOf"]
    assert schemas[name]["properties"]["reportType"]["const"] == KEY
    assert type(course_list).parameters_model.__name__ in schemas
    for body in ("TemplateCreate", "ScheduleCreate"):
        variant = variant_name(REPORT_TYPES[KEY], body)
        assert {"$ref": f"#/components/schemas/{variant}"} in schemas[body]["oneOf"]


async def test_malformed_json_is_a_422_saying_where(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    headers = {**auth("admin"), "Content-Type": "application/json"}
    cases = {
        '{"reportType": "learner-progress", "format": "csv",}': (1, 52),
        '{\n  "reportType": "learner-progress",\n  "format": "csv"\n  "parameters": {}\n}': (4, 3),
        '{"reportType": ': (1, 16),
    }
    for body, (line, column) in cases.items():
        response = await client.post(JOBS, content=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        message = f"the body is not valid JSON (line {line}, column {column})"
        assert problem["errors"] == [
            {"field": "body", "message": message, "type": "json_invalid", "code": "json-invalid"}
        ]
        assert problem["detail"] == f"body: {message}"


async def test_a_body_that_is_not_json_is_a_415(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    body = '{"reportType": "learner-progress", "format": "csv"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = await client.post(
            JOBS, content=body, headers={**auth("admin"), "Content-Type": content_type}
        )
        assert response.status_code == 415, (content_type, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "media-type-unsupported"
        assert content_type in response.json()["detail"]
    untyped = await client.post(JOBS, content=body, headers=auth("admin"))
    assert untyped.status_code == 415 and "none was given" in untyped.json()["detail"]
    # JSON by any JSON media type still works; field names in errors are unchanged.
    accepted = await client.post(
        JOBS,
        content=body,
        headers={**auth("admin"), "Content-Type": "application/json; charset=utf-8"},
    )
    assert accepted.status_code == 202, accepted.text
    bad_preset = await client.post(
        JOBS,
        json={
            "reportType": "learner-progress",
            "format": "csv",
            "parameters": {"dateRange": {"preset": "someday"}},
        },
        headers=auth("admin"),
    )
    assert [e["field"] for e in bad_preset.json()["errors"]] == ["parameters.dateRange.preset"]
    bad_type = await client.post(
        JOBS, json={"reportType": "nope", "format": "csv"}, headers=auth("admin")
    )
    assert [e["field"] for e in bad_type.json()["errors"]] == ["body.reportType"]


async def test_the_docs_are_served_without_a_cdn(client: httpx.AsyncClient) -> None:
    home = await client.get("/")
    assert home.status_code in (302, 307) and home.headers["location"] == "/docs"
    for page, assets in (
        ("/docs", ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")),
        ("/redoc", ("redoc.standalone.js",)),
    ):
        html = (await client.get(page)).text
        assert "http://" not in html and "https://" not in html, page
        for asset in assets:
            assert f"/docs/assets/{asset}" in html
            served = await client.get(f"/docs/assets/{asset}")
            assert served.status_code == 200 and len(served.content) > 1000, asset
    scheme = CONTRACT["components"]["securitySchemes"]["HTTPBearer"]
    assert "make run" in scheme["description"] and "scripts.mint_token" in scheme["description"]
