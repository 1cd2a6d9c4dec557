"""Browser frontends on other origins (CORS): preflights and cross-origin requests through the
middleware (errors and an unexpected 500 included), the setting's defaults, and a real headless
Chromium running a page from another local origin that creates a job with fetch(), polls it on
a real API and worker, and reads a 404's and a 500's problem."""

from __future__ import annotations

import asyncio
import functools
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId
from playwright.async_api import Browser

from app.config import LOCAL_DEV_ORIGINS, Settings
from app.main import CORS_EXPOSED_HEADERS, create_app
from app.reports.jobs.models import ReportJob
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.api_server import running_api
from tests.helpers.browser import chromium
from tests.helpers.processes import kill_group, start_worker
from tests.helpers.settings import make_settings
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
VITE = "http://localhost:5173"
PAGE = Path(__file__).resolve().parent / "browser" / "frontend.html"
BODY = {
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "last-30-days"}},
}


ADMIN = "a" * 24


async def _broken_job() -> str:
    """A job of ADMIN's whose stored document no longer reads (a status nobody knows): reading
    it is an unexpected error, a 500."""
    job_id = ObjectId()
    await ReportJob.get_pymongo_collection().insert_one(
        {
            "_id": job_id,
            "report_type": "learner-progress",
            "format": "csv",
            "status": "half-done",
            "requested_by": {"user_id": ADMIN, "name": "Root"},
        }
    )
    return str(job_id)


def _exposed(response: httpx.Response) -> set[str]:
    return {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}


async def test_a_preflight_from_a_dev_server_is_answered(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        JOBS,
        headers={
            "Origin": VITE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == VITE
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert "access-control-allow-credentials" not in preflight.headers  # bearer tokens only
    assert int(preflight.headers["access-control-max-age"]) > 0


async def test_cross_origin_answers_expose_the_headers_a_frontend_reads(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    created = await client.post(JOBS, json=BODY, headers={**auth("admin"), "Origin": VITE})
    assert created.status_code == 202, created.text
    assert created.headers["access-control-allow-origin"] == VITE
    assert "access-control-allow-credentials" not in created.headers
    assert _exposed(created) == {h.lower() for h in CORS_EXPOSED_HEADERS}
    assert created.headers["location"] and created.headers["x-request-id"]
    # Errors too: a page can read why it was refused.
    refused = await client.post(JOBS, json=BODY, headers={"Origin": VITE})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == VITE


async def test_an_unexpected_error_carries_the_cors_headers(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    broken = await _broken_job()
    response = await client.get(
        f"{JOBS}/{broken}", headers={**auth("admin", sub=ADMIN), "Origin": VITE}
    )
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == VITE
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "server-error" and problem["title"] == "Internal error"
    assert problem["requestId"] == response.headers["x-request-id"]
    assert "half-done" not in response.text  # what broke stays in the log


async def test_other_origins_get_no_cors_headers(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    evil = "https://evil.example"
    preflight = await client.options(
        JOBS, headers={"Origin": evil, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    response = await client.post(JOBS, json=BODY, headers={**auth("admin"), "Origin": evil})
    assert response.status_code == 202  # the server answers; the browser hides it from the page
    assert "access-control-allow-origin" not in response.headers


async def test_production_allows_no_origin_unless_configured(resources: Resources) -> None:
    production = {"app_env": "production", "jwt_secret": "s" * 40}
    assert make_settings(**production).cors_origins == []
    assert make_settings().cors_origins == list(LOCAL_DEV_ORIGINS)
    assert VITE in LOCAL_DEV_ORIGINS and "http://127.0.0.1:3000" in LOCAL_DEV_ORIGINS
    assert make_settings(cors_allow_origins="").cors_origins == []
    configured = make_settings(
        **production, cors_allow_origins=" https://reports.example.com/, https://b.example "
    )
    assert configured.cors_origins == ["https://reports.example.com", "https://b.example"]
    async with api_client(create_app(configured, resources=resources)) as client:
        preflight = {"Access-Control-Request-Method": "GET"}
        denied = await client.options(JOBS, headers={"Origin": VITE, **preflight})
        assert "access-control-allow-origin" not in denied.headers
        allowed = await client.options(
            JOBS, headers={"Origin": "https://reports.example.com", **preflight}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://reports.example.com"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_page(directory: Path) -> Iterator[str]:
    """A static file server of its own (another origin than the API's); yields its origin."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def _outcome(browser: Browser, url: str) -> dict[str, Any]:
    page = await browser.new_page()
    try:
        await page.goto(url)
        await page.wait_for_function("window.checked !== undefined", timeout=90_000)
        outcome: dict[str, Any] = await page.evaluate("window.checked")
        return outcome
    finally:
        await page.close()


async def test_a_page_on_another_origin_runs_a_report_in_headless_chromium(
    settings: Settings, resources: Resources, auth: TokenFactory, tmp_path: Path
) -> None:
    dept = await f.department("Browsers")
    learner = await f.user("Tim Berners-Lee", dept=dept)
    course = await f.course("WEB-101", dept=dept)
    await f.enrollment(learner, course, enrolled_at=f.dt(2026, 3, 1, 9))
    token = auth("admin", sub=ADMIN)["Authorization"].removeprefix("Bearer ")
    broken = await _broken_job()
    (tmp_path / "index.html").write_text(PAGE.read_text())

    worker = start_worker(settings)
    try:
        with (
            serve_page(tmp_path) as page_origin,
            serve_page(tmp_path) as stranger_origin,
            running_api(settings, CORS_ALLOW_ORIGINS=page_origin) as api,
        ):
            async with chromium() as browser:
                fragment = f"#api={api}&token={token}&broken={broken}"
                outcome = await _outcome(browser, f"{page_origin}/index.html{fragment}")
                blocked = await _outcome(browser, f"{stranger_origin}/index.html{fragment}")
    finally:
        kill_group(worker, signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 30)

    assert "error" not in outcome, outcome
    assert outcome["created"] == 202
    assert outcome["location"].startswith(f"{JOBS}/") and outcome["requestId"]
    assert outcome["status"] == "completed"
    assert outcome["replayed"] == [200, "true"]
    assert outcome["disposition"].startswith("attachment;") and ".csv" in outcome["disposition"]
    assert outcome["rows"] == 1
    assert outcome["problem"] == [404, "application/problem+json", "job-not-found"]
    # A 500 carries the CORS headers too: the page reads the problem, not a network error.
    assert outcome["crash"] == [500, "application/problem+json", "server-error"]
    request_id, said = outcome["crashRequestId"]
    assert request_id and request_id == said
    # A page on an origin the API does not list cannot read its answers.
    assert blocked == {"error": "TypeError: Failed to fetch"}
