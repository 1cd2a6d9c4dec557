"""Abuse limits: body size, page size, ids per filter, batch size, per-user job quota, date-range
length, row limits, and safe file names and storage keys."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from pydantic import ValidationError

from app.common.http import content_disposition
from app.config import Settings
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.schedules.models import ReportSchedule
from app.runtime.resources import Resources
from app.storage.base import validate_key
from app.storage.local import LocalStorage
from tests import factories as f
from tests.helpers.processes import ROOT, free_port
from tests.helpers.settings import settings_env
from tests.helpers.tokens import TokenFactory

API = "/api/v1/reports"
JOBS = f"{API}/jobs"
RANGE = {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}


def report(fmt: str = "csv", /, **params: Any) -> dict[str, Any]:
    return {
        "reportType": "learner-progress",
        "format": fmt,
        "parameters": {"dateRange": RANGE, **params},
    }


def field_errors(response: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json().get("errors") or []}


# ---------------------------------------------------------------------------------------------
# Request size


async def test_a_body_over_the_cap_is_413_problem_before_it_is_read(
    client: httpx.AsyncClient, auth: TokenFactory, settings: Settings
) -> None:
    big = b'{"name": "' + b"x" * (settings.max_request_body_bytes + 1) + b'"}'
    for path in (JOBS, f"{API}/templates", "/api/v1/learning-events/batch"):
        response = await client.post(
            path, content=big, headers={**auth("admin"), "Content-Type": "application/json"}
        )
        assert response.status_code == 413, (path, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "payload-too-large"
        assert str(settings.max_request_body_bytes) in response.json()["detail"]


async def test_a_streamed_body_without_length_is_cut_off_at_the_cap(
    client: httpx.AsyncClient, auth: TokenFactory, settings: Settings
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"events": ['
        for _ in range(settings.max_request_body_bytes // 1000 + 2):
            yield b" " * 1000

    response = await client.post(
        "/api/v1/learning-events/batch",
        content=chunks(),
        headers={**auth("admin"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload-too-large"


# ---------------------------------------------------------------------------------------------
# Pages, id filters, batches


@pytest.mark.parametrize(
    "path",
    [
        JOBS,
        f"{API}/templates",
        f"{API}/schedules",
        f"{API}/metadata/filter-options/users",
        f"{API}/schedules/{ObjectId()}/runs",
    ],
)
async def test_page_size_over_100_is_422(
    client: httpx.AsyncClient, auth: TokenFactory, path: str
) -> None:
    response = await client.get(path, params={"limit": 101}, headers=auth("admin"))
    assert response.status_code == 422
    assert "query.limit" in field_errors(response)
    ok = await client.get(path, params={"limit": 100}, headers=auth("admin"))
    assert ok.status_code in (200, 404)


@pytest.mark.parametrize("name", ["departmentIds", "courseIds"])
async def test_more_ids_than_max_filter_ids_is_422_naming_the_field(
    client: httpx.AsyncClient, auth: TokenFactory, settings: Settings, name: str
) -> None:
    ids = [str(ObjectId()) for _ in range(settings.max_filter_ids + 1)]
    for url, body in (
        (JOBS, report(**{name: ids})),
        (f"{API}/templates", {"name": "many", **report(**{name: ids})}),
    ):
        response = await client.post(url, json=body, headers=auth("admin"))
        assert response.status_code == 422, response.text
        errors = field_errors(response)
        key = next(k for k in errors if k.endswith(f"parameters.{name}"))
        assert f"at most {settings.max_filter_ids}" in errors[key]
    assert await ReportJob.count() == 0


async def test_a_learning_event_batch_over_the_maximum_is_422(
    client: httpx.AsyncClient, auth: TokenFactory, settings: Settings
) -> None:
    event = {"type": "course-started", "userId": str(ObjectId()), "occurredAt": "2026-01-01"}
    body = {"events": [event] * (settings.learning_events_batch_max + 1)}
    response = await client.post("/api/v1/learning-events/batch", json=body, headers=auth("admin"))
    assert response.status_code == 422
    assert str(settings.learning_events_batch_max) in field_errors(response)["body.events"]


# ---------------------------------------------------------------------------------------------
# Quota, date ranges


async def test_the_per_user_job_quota_is_429_with_retry_after(
    client: httpx.AsyncClient, auth: TokenFactory, settings: Settings
) -> None:
    await f.department()
    headers = auth("admin", sub=str(ObjectId()))
    for _ in range(settings.max_active_jobs_per_user):
        assert (await client.post(JOBS, json=report(), headers=headers)).status_code == 202
    refused = await client.post(JOBS, json=report(), headers=headers)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    body = refused.json()
    assert body["code"] == "job-quota-exceeded"
    assert str(settings.max_active_jobs_per_user) in body["detail"]
    # Someone else is not affected.
    assert (await client.post(JOBS, json=report(), headers=auth("admin"))).status_code == 202


async def test_a_date_range_longer_than_allowed_is_422_naming_the_field(
    client: httpx.AsyncClient, auth: TokenFactory, settings: Settings
) -> None:
    too_long = {"preset": "custom", "from": "2000-01-01", "to": "2026-12-31"}
    response = await client.post(JOBS, json=report(dateRange=too_long), headers=auth("admin"))
    assert response.status_code == 422
    errors = field_errors(response)
    field = next(k for k in errors if "dateRange" in k)
    assert field.startswith("parameters.dateRange")
    assert f"at most {settings.max_date_range_days}" in errors[field]
    assert field in response.json()["detail"]


# ---------------------------------------------------------------------------------------------
# Row limits


@pytest.mark.parametrize(("fmt", "setting"), [("csv", "csv_max_rows"), ("xlsx", "xlsx_max_rows")])
async def test_a_report_over_the_row_limit_fails_naming_the_limit(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, fmt: str, setting: str
) -> None:
    dept = await f.department()
    crs = await f.course()
    for _ in range(2):
        await f.enrollment(await f.user(dept=dept), crs, enrolled_at=f.dt(2026, 3, 1))
    created = await client.post(JOBS, json=report(fmt), headers=auth("admin"))
    assert created.status_code == 202
    await run_worker(**{setting: 1})
    job = (await client.get(f"{JOBS}/{created.json()['id']}", headers=auth("admin"))).json()
    assert job["status"] == "failed"
    assert job["attempt"] == 1  # permanent: not retried
    assert job["error"]["code"] == "row-limit-exceeded"
    assert "2 rows" in job["error"]["message"] and "limited to 1" in job["error"]["message"]
    stored = await ReportJob.get(created.json()["id"])
    assert stored and stored.status == JobStatus.FAILED and stored.result is None


# ---------------------------------------------------------------------------------------------
# File names and storage keys


@pytest.mark.parametrize(
    "name",
    [
        'report.csv"\r\nSet-Cookie: stolen=1',
        "report.csv\nX-Injected: 1",
        'a";filename="evil.exe',
        "../../etc/passwd",
        "rapport-é-ü-€.csv",
        "\x00\x7f\u2028name.csv",
    ],
)
def test_content_disposition_cannot_inject_headers(name: str) -> None:
    value = content_disposition(name)
    assert all(32 <= ord(c) < 127 for c in value), value  # plain ASCII, no CR / LF / NUL
    assert value.startswith('attachment; filename="')
    ascii_name = value.split('filename="', 1)[1].split('"; filename*=', 1)[0]
    assert '"' not in ascii_name and "\\" not in ascii_name and ";" not in ascii_name
    value.encode("latin-1")  # a valid header value


async def test_the_download_headers_are_safe(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    await f.department()
    headers = auth("admin")
    job_id = (await client.post(JOBS, json=report(), headers=headers)).json()["id"]
    await run_worker()
    response = await client.get(f"{JOBS}/{job_id}/download", headers=headers)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "\n" not in disposition


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../secret",
        "reports/../../secret",
        "reports/./x",
        "reports//x",
        "reports/x/..",
        "reports\\..\\x",
        "reports/x\x00.csv",
        "reports/x y.csv",
        "reports/%2e%2e/x",
    ],
)
def test_unsafe_storage_keys_are_refused(key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        validate_key(key)
    with pytest.raises(ValueError):
        LocalStorage(tmp_path).path_for(key)


def test_safe_storage_keys_stay_under_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    path = storage.path_for("reports/2026/03/01/abc/a1/learner-progress-20260301-0900.csv")
    assert path.is_relative_to(tmp_path.resolve())


async def test_a_symlink_cannot_lead_a_key_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "reports").symlink_to(outside)
    with pytest.raises(ValueError):
        LocalStorage(root).path_for("reports/secret.csv")


async def test_a_request_id_header_is_not_echoed_unless_it_is_safe(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    sane = await client.get("/healthz", headers={"X-Request-ID": "abc-123_x.y"})
    assert sane.headers["x-request-id"] == "abc-123_x.y"
    for bad in ("<script>alert(1)</script>", "a" * 65, "a b", "x;y"):
        response = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert response.headers["x-request-id"] != bad
        assert len(response.headers["x-request-id"]) == 32


# ---------------------------------------------------------------------------------------------
# Secrets in production


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({}, "JWT_SECRET"),
        ({"jwt_secret": "short-but-not-default"}, "JWT_SECRET"),
        ({"jwt_algorithm": "RS256"}, "JWT_PUBLIC_KEY"),
    ],
)
def test_production_refuses_default_weak_or_missing_secrets(
    values: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(app_env="production", **values)
    Settings(app_env="production", jwt_secret="x" * 32)  # a real secret is accepted


# ---------------------------------------------------------------------------------------------
# Bounds on dates and timezones: a 422 naming the field, never a 500


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (report(timezone="A" * 256), "parameters.timezone"),
        (report(timezone="Europe/" + "x" * 60), "parameters.timezone"),
        (
            report(dateRange={"preset": "custom", "from": "2026-01-01", "to": "9999-12-31"}),
            "parameters.dateRange.to",
        ),
        (
            report(dateRange={"preset": "custom", "from": "0001-01-01", "to": "2026-01-01"}),
            "parameters.dateRange.from",
        ),
        (
            {
                "reportType": "compliance-status",
                "format": "csv",
                "parameters": {"asOfDate": "9999-12-31"},
            },
            "parameters.asOfDate",
        ),
    ],
)
async def test_dates_outside_the_window_and_long_timezones_are_422(
    client: httpx.AsyncClient, auth: TokenFactory, body: dict[str, Any], field: str
) -> None:
    await f.department()
    for path in (JOBS, f"{API}/templates"):
        sent = {**body, "name": "Bounds"} if path.endswith("templates") else body
        response = await client.post(path, json=sent, headers=auth("admin"))
        assert response.status_code == 422, (path, response.status_code, response.text)
        named = field_errors(response)
        assert any(name.endswith(field) for name in named), (path, named)
    assert await ReportJob.find_all().count() == 0


SCHEDULE = {
    "name": "Nightly",
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "yesterday"}},
    "frequency": "daily",
    "timeOfDay": "02:30",
    "timezone": "UTC",
}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"startDate": "9999-12-31"}, "body.startDate"),
        ({"endDate": "2101-01-01"}, "body.endDate"),
        ({"timezone": "A" * 256}, "body.timezone"),
    ],
)
async def test_a_schedule_with_dates_outside_the_window_is_422_and_stores_nothing(
    client: httpx.AsyncClient, auth: TokenFactory, extra: dict[str, Any], field: str
) -> None:
    await f.department()
    path = f"{API}/schedules"
    response = await client.post(path, json={**SCHEDULE, **extra}, headers=auth("admin"))
    assert response.status_code == 422, response.text
    assert field in field_errors(response)
    assert (await client.get(path, headers=auth("admin"))).json()["items"] == []


async def test_a_stored_schedule_invalid_under_newer_rules_never_breaks_the_api(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    """Stored when the window did not exist yet: listed, read and paused with an error note."""
    await f.department()
    headers = auth("admin")
    path = f"{API}/schedules"
    good = await client.post(path, json=SCHEDULE, headers=headers)
    assert good.status_code == 201, good.text
    collection = ReportSchedule.get_pymongo_collection()
    stored = await collection.find_one({})
    assert stored is not None
    bad = dict(stored)
    bad.pop("_id")
    bad.update(
        name="Old",
        start_date="9999-12-31",
        next_run_at=datetime(9999, 12, 31, 2, 30, tzinfo=UTC),
    )
    bad_id = str((await collection.insert_one(bad)).inserted_id)
    listed = await client.get(path, headers=headers)
    assert listed.status_code == 200, listed.text
    by_id = {s["id"]: s for s in listed.json()["items"]}
    assert by_id[good.json()["id"]]["error"] is None
    assert by_id[bad_id]["error"] and by_id[bad_id]["nextRuns"] == []
    assert (await client.get(f"{path}/{bad_id}", headers=headers)).status_code == 200
    paused = await client.post(f"{path}/{bad_id}/pause", json={}, headers=headers)
    assert paused.status_code == 200, paused.text
    assert (await client.delete(f"{path}/{bad_id}", headers=headers)).status_code == 204


# ---------------------------------------------------------------------------------------------
# Header size (a real server process: the cap is in the HTTP protocol, before the app)


def test_headers_over_the_cap_are_431_from_a_real_server(settings: Settings) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port)],
        cwd=ROOT,
        env=settings_env(settings, MAX_REQUEST_HEADER_BYTES="65536"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.2)

        def ask(header_bytes: int) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                request = (
                    b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: "
                    + b"a" * header_bytes
                    + b"\r\n\r\n"
                )
                with contextlib.suppress(OSError):  # the server may stop reading early
                    s.sendall(request)
                return s.recv(4096)

        assert ask(1000).startswith(b"HTTP/1.1 200")
        assert ask(40_000).startswith(b"HTTP/1.1 200")
        for size in (70_000, 8_000_000):
            answer = ask(size)
            assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
            assert b"request-header-too-large" in answer
        # The server still answers afterwards.
        assert ask(100).startswith(b"HTTP/1.1 200")
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z"]
)
async def test_datetimes_outside_the_window_are_422_everywhere(
    client: httpx.AsyncClient, auth: TokenFactory, moment: str
) -> None:
    """Datetimes whose UTC value overflows (or lies past the window) are a 422 naming the
    field, in query strings and in bodies alike; no learning event is stored."""
    user = await f.user()
    admin = auth("admin")
    for path, field in (
        (f"{JOBS}?createdFrom={moment}", "createdFrom"),
        (f"{API}/audit?to={moment}", "to"),
    ):
        answer = await client.get(path.replace("+", "%2B"), headers=admin)
        assert answer.status_code == 422, (path, answer.text)
        assert any(name.endswith(field) for name in field_errors(answer)), answer.text
    event = {"type": "course-enrolled", "userId": str(user.id), "occurredAt": moment}
    answer = await client.post("/api/v1/learning-events", json=event, headers=admin)
    assert answer.status_code == 422, answer.text
    assert any(name.endswith("occurredAt") for name in field_errors(answer)), answer.text
    batch = await client.post(
        "/api/v1/learning-events/batch", json={"events": [event]}, headers=admin
    )
    assert batch.status_code == 200, batch.text
    [result] = batch.json()["results"]
    assert result["status"] == "rejected"
    assert result["errors"][0]["field"] == "body.events.0.occurredAt"
