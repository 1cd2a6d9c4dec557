"""Schema-driven fuzzing of every operation in the committed `openapi.json` (schemathesis),
in-process against the ASGI app, as an admin and as a learner.

Cases are generated with Hypothesis (valid and invalid inputs), then sent through httpx to the
app on the session's event loop, and every response is checked: no server error (a 503 is
documented and allowed), a documented status code, a documented content type and a body that
matches the documented schema. Path ids are real objects half of the time, so the handlers
behind the 404s are reached too."""

from __future__ import annotations

import functools
import itertools
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from bson import ObjectId
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories as f
from tests.helpers.tokens import TokenFactory

CONTRACT = Path(__file__).resolve().parents[1] / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(str(CONTRACT))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SLOW_SECONDS = 2.0  # no single request may take longer (a cheap denial of service)
RANGE = {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}


@functools.cache
def generate(max_examples: int) -> list[Any]:
    """Cases for every operation, valid and invalid, `max_examples` of each per operation."""
    cases: list[Any] = []
    for result in SCHEMA.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the schema describes an operation it cannot load
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=max_examples,
                database=None,
                deadline=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def collect(case: Any) -> None:
                cases.append(case)

            try:
                collect()
            except Unsatisfiable:  # nothing to make invalid (e.g. no parameters at all)
                pass
    return cases


async def _real_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    """A job, a template and a schedule owned by the caller, to aim path ids at."""
    dept = await f.department()
    learner = await f.user(dept=dept)
    course = await f.course(dept=dept)
    await f.enrollment(learner, course, enrolled_at=f.dt(2026, 3, 1))
    body = {"reportType": "learner-progress", "format": "csv", "parameters": {"dateRange": RANGE}}
    ids = {"key": "learner-progress", "category": "report-format", "kind": "departments"}
    job = await client.post("/api/v1/reports/jobs", json=body, headers=headers)
    if job.status_code == 202:
        ids["job_id"] = job.json()["id"]
    template = await client.post(
        "/api/v1/reports/templates", json={"name": "Fuzz", **body}, headers=headers
    )
    if template.status_code == 201:
        ids["template_id"] = template.json()["id"]
    schedule = await client.post(
        "/api/v1/reports/schedules",
        json={"name": "Fuzz", "frequency": "daily", "timeOfDay": "07:00", **body},
        headers=headers,
    )
    if schedule.status_code == 201:
        ids["schedule_id"] = schedule.json()["id"]
    return ids


def _request(case: Any) -> dict[str, Any]:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": {k: str(v) for k, v in (kwargs.get("headers") or {}).items()},
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif "data" in kwargs:
        data = kwargs["data"]
        request["content"] = data.encode() if isinstance(data, str) else data
    return request


async def fuzz(
    client: httpx.AsyncClient, headers: dict[str, str], max_examples: int
) -> tuple[int, list[str]]:
    ids = await _real_ids(client, headers)
    aim = itertools.cycle([True, False])
    failures: list[str] = []
    sent = 0
    for case in generate(max_examples):
        if case.path_parameters:
            for name in case.path_parameters:
                if name in ids and next(aim):
                    case.path_parameters[name] = ids[name]
        request = _request(case)
        request["headers"] = {**request["headers"], **headers}
        started = time.perf_counter()
        response = await client.request(**request)
        elapsed = time.perf_counter() - started
        sent += 1
        if elapsed > SLOW_SECONDS:
            failures.append(
                f"{case.method} {case.operation.path} took {elapsed:.1f} s "
                f"(-> {response.status_code})\n  request: {str(request)[:600]}"
            )
        if response.status_code == 503:
            continue  # documented: a backing service is away
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:  # one report per failing case
            titles = "; ".join(sorted({getattr(e, "title", str(e)) for e in group.exceptions}))
            failures.append(
                f"{case.method} {case.operation.path} -> {response.status_code} ({titles}): "
                f"{response.text[:300]}\n  request: {str(request)[:400]}"
            )
    return sent, failures


@pytest.mark.parametrize("role", ["admin", "learner"])
async def test_fuzz_every_operation_finds_no_server_error_or_schema_violation(
    client: httpx.AsyncClient, auth: TokenFactory, role: str
) -> None:
    sent, failures = await fuzz(client, auth(role, sub=str(ObjectId())), max_examples=6)
    assert sent > 200
    assert not failures, f"{len(failures)} of {sent} cases failed:\n" + "\n".join(failures[:20])


@pytest.mark.soak
@pytest.mark.parametrize("role", ["admin", "manager", "instructor", "learner"])
async def test_fuzz_soak(client: httpx.AsyncClient, auth: TokenFactory, role: str) -> None:
    sent, failures = await fuzz(client, auth(role, sub=str(ObjectId())), max_examples=60)
    assert not failures, f"{len(failures)} of {sent} cases failed:\n" + "\n".join(failures[:20])
