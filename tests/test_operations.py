"""Operations: the worker's own metrics endpoint, lookups honoured live by every process,
admins changing lookups (structural codes refused), one log format, and the files generated
from the app (the Postman collection) kept current."""

from __future__ import annotations

import io
import json
import logging
import re
import signal
from datetime import timedelta
from typing import Any

import httpx
import pytest
import structlog

from app.common.redaction import redact_path
from app.common.time import utcnow
from app.config import Settings
from app.lookups.models import LookupValue
from app.observability import configure_logging
from app.reports.schedules.models import ReportSchedule, ScheduleStatus
from app.runtime.resources import Resources
from scripts.export_openapi import POSTMAN, outputs
from tests import factories as f
from tests.helpers.jobs import finished_job
from tests.helpers.polling import wait_until
from tests.helpers.processes import free_port, kill_group, start_api, start_worker
from tests.helpers.schedules import owner, schedule_for
from tests.helpers.servers import stop_process, wait_for_port
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
LOOKUPS = "/api/v1/reports/metadata/lookups"


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample in an exposition text, or None when absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        metric, _, value = line.rpartition(" ")
        head, _, rest = metric.partition("{")
        if head != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


async def _reactivate() -> None:
    """The lookup table outlives a test (operator switches survive re-seeding): undo ours."""
    await LookupValue.get_pymongo_collection().update_many({}, {"$set": {"is_active": True}})


@pytest.mark.slow
async def test_the_worker_serves_job_queue_and_scheduler_metrics_after_a_scheduled_run(
    resources: Resources,
) -> None:
    user = await owner(roles=["admin"])
    await f.course("SEC-101", title="Security basics")
    schedule = await schedule_for(user, utcnow() - timedelta(seconds=30))
    port = free_port()
    worker = start_worker(WORKER_METRICS_PORT=str(port), WORKER_HEARTBEAT_SECONDS="0.5")
    try:
        wait_for_port(port, 60, "the worker's metrics endpoint")

        async def job_of_schedule() -> Any:
            found = await ReportSchedule.get(schedule.id)
            return found and found.last_job_id and await finished_job(str(found.last_job_id))

        job = await wait_until(job_of_schedule, 60, "the scheduled job to finish")
        assert job.status == "completed"

        async def scraped() -> str | None:
            async with httpx.AsyncClient(timeout=5) as http:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            done = _sample(
                text,
                "report_jobs_finished_total",
                report_type="learner-progress",
                format="csv",
                outcome="completed",
            )
            return text if done == 1.0 and _sample(text, "report_queue_depth") == 0 else None

        text = await wait_until(scraped, 20, "the job and queue samples")
    finally:
        kill_group(worker, signal.SIGTERM)
        worker.wait(30)
    assert _sample(text, "report_scheduler_lag_seconds_count") == 1.0
    lag = _sample(text, "report_scheduler_lag_seconds_sum")
    assert lag is not None and 0 < lag < 120  # fired 30 s late (at most), seen once
    assert _sample(text, "report_job_duration_seconds_count", report_type="learner-progress") == 1
    assert _sample(text, "report_job_rows_count", format="csv") == 1.0
    assert _sample(text, "report_queue_oldest_age_seconds") == 0.0
    assert _sample(text, "report_jobs_running") == 0.0
    for name in (
        "report_jobs_leased",
        "report_job_lease_takeovers_total",
        "report_job_retries_total",
        "report_schedule_failures_total",
        "report_schedule_auto_pauses_total",
        "report_render_process_restarts_total",
    ):
        assert _sample(text, name) == 0.0, name


@pytest.mark.slow
async def test_a_lookup_switched_off_in_the_database_is_honoured_by_the_api_and_the_worker(
    resources: Resources, settings: Settings, auth: TokenFactory
) -> None:
    """Both run as processes of their own, refreshing every second; the change is made in the
    database directly, as an operator's script would."""
    port = free_port()
    env = {"LOOKUP_REFRESH_SECONDS": "1"}
    api = start_api(port, **env)
    worker = start_worker(**env)
    headers = auth("admin")
    body = {
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "yesterday"}},
    }
    try:
        wait_for_port(port, 60, "the API")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            assert (await http.post(JOBS, json=body, headers=headers)).status_code == 202
            await LookupValue.get_pymongo_collection().update_one(
                {"category": "date-range-preset", "code": "yesterday"},
                {"$set": {"is_active": False}},
            )
            changed_at = utcnow()

            async def refused() -> httpx.Response | None:
                r = await http.post(JOBS, json=body, headers=headers)
                return r if r.status_code == 422 else None

            r = await wait_until(refused, 10, "the API to refuse the inactive preset")
            assert utcnow() - changed_at < timedelta(seconds=5)  # the interval, plus slack
            [error] = r.json()["errors"]
            assert error["field"] == "parameters.dateRange.preset"
            assert error["type"] == "lookup_code_inactive"

        # The worker's scheduler runs the schedule as its owner through the same validation:
        # the inactive preset makes the schedule pause itself (next tick, at second 0).
        user = await owner(roles=["admin"])
        schedule = await schedule_for(
            user, utcnow() - timedelta(seconds=1), parameters={"dateRange": {"preset": "yesterday"}}
        )

        async def paused() -> ReportSchedule | None:
            found = await ReportSchedule.get(schedule.id)
            return found if found and found.status == ScheduleStatus.PAUSED else None

        stopped = await wait_until(paused, 75, "the worker to pause the schedule")
        assert stopped.paused_reason and "yesterday" in stopped.paused_reason
    finally:
        await _reactivate()
        kill_group(worker, signal.SIGTERM)
        worker.wait(30)
        stop_process(api)


async def test_admins_change_lookups_and_structural_codes_stay_active(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    admin = auth("admin", sub="root")
    try:
        r = await client.patch(
            f"{LOOKUPS}/date-range-preset/last-year", json={"isActive": False}, headers=admin
        )
        assert r.status_code == 200, r.text
        assert r.json()["isActive"] is False and r.json()["code"] == "last-year"
        # This process honours it at once; the presets offered no longer list it.
        refused = await client.post(
            JOBS,
            json={
                "reportType": "learner-progress",
                "format": "csv",
                "parameters": {"dateRange": {"preset": "last-year"}},
            },
            headers=admin,
        )
        assert refused.status_code == 422
        presets = await client.get("/api/v1/reports/metadata/date-range-presets", headers=admin)
        assert "last-year" not in {p["preset"] for p in presets.json()["items"]}

        relabelled = await client.patch(
            f"{LOOKUPS}/report-status/failed", json={"label": "Did not finish"}, headers=admin
        )
        assert relabelled.status_code == 200 and relabelled.json()["label"] == "Did not finish"
        for category, code in (
            ("report-status", "failed"),
            ("date-range-preset", "custom"),
            ("date-range-preset", "last-30-days"),
        ):
            r = await client.patch(
                f"{LOOKUPS}/{category}/{code}", json={"isActive": False}, headers=admin
            )
            assert r.status_code == 409, (category, code)
            assert r.json()["code"] == "lookup-value-structural"

        assert (
            await client.patch(f"{LOOKUPS}/report-format/docx", json={"label": "x"}, headers=admin)
        ).status_code == 404
        assert (
            await client.patch(f"{LOOKUPS}/report-format/pdf", json={}, headers=admin)
        ).status_code == 422
        denied = await client.patch(
            f"{LOOKUPS}/report-format/pdf", json={"isActive": False}, headers=auth("manager")
        )
        assert denied.status_code == 403

        trail = await client.get(
            "/api/v1/reports/audit", params={"objectType": "lookup"}, headers=admin
        )
        events = [(e["action"], e["outcome"], e["objectId"]) for e in trail.json()["items"]]
        assert events == [
            ("lookup.changed", "denied", "report-format/pdf"),
            ("lookup.changed", "allowed", "report-status/failed"),
            ("lookup.changed", "allowed", "date-range-preset/last-year"),
        ]
        [change] = [
            e for e in trail.json()["items"] if e["objectId"] == "date-range-preset/last-year"
        ]
        assert change["details"] == {"before": {"is_active": True}, "after": {"is_active": False}}
    finally:
        await _reactivate()
        await LookupValue.get_pymongo_collection().update_one(
            {"category": "report-status", "code": "failed"}, {"$set": {"label": "Failed"}}
        )


def test_standard_library_lines_share_the_json_format_with_the_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(_env_file=None, log_format="json", log_level="INFO")
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        configure_logging(settings)
        structlog.contextvars.bind_contextvars(request_id="req-42")
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET", "/healthz", "1.1", 200
        )
        logging.getLogger("arq.worker").warning("job %s took %.1f s", "abc", 2.0)
    finally:
        structlog.contextvars.clear_contextvars()
        root.handlers[:], root.level = before[0], before[1]
        configure_logging(Settings(_env_file=None, app_env="test", log_level="WARNING"))
    lines = [json.loads(line) for line in io.StringIO(capsys.readouterr().err) if line.strip()]
    access, arq = lines[-2], lines[-1]
    assert access["event"] == "http_access" and access["request_id"] == "req-42"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/healthz", 200)
    assert access["logger"] == "uvicorn.access" and access["level"] == "info"
    assert arq["event"] == "job abc took 2.0 s" and arq["level"] == "warning"
    assert arq["request_id"] == "req-42" and "timestamp" in arq


def test_the_postman_collection_is_what_make_openapi_generates() -> None:
    assert POSTMAN.exists(), "docs/postman_collection.json is missing: run `make openapi`"
    assert POSTMAN.read_text() == outputs()[POSTMAN], (
        "docs/postman_collection.json differs from what `make openapi` generates: run it and "
        "commit the result"
    )


def test_delivery_link_tokens_never_reach_the_access_log() -> None:
    assert redact_path("/api/v1/reports/deliveries/eyJhIjoxfQ.c2ln") == (
        "/api/v1/reports/deliveries/<token>"
    )
    resend = "/api/v1/reports/deliveries/6b0db450aa0d3c1e8f2ba3e2/resend"
    assert redact_path(resend) == resend
    assert redact_path("/api/v1/reports/jobs/x") == "/api/v1/reports/jobs/x"
