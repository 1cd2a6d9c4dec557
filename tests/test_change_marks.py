"""A change report's own file and stored state, on real servers: the CSV and JSON Lines of a
run end each row with its `change` mark (added / changed / unchanged against the last delivered
run), which `GET /jobs/{id}/rows` reads back; changing the request a run compares starts every
scope afresh; fingerprint files no baseline needs are swept from storage."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from beanie import PydanticObjectId

from app.common.time import utcnow
from app.main import create_app
from app.reports.jobs.models import ReportJob
from app.reports.schedules.changes.marks import ADDED, CHANGED, UNCHANGED, BaselineKeys
from app.reports.schedules.changes.runs import BASELINES_PREFIX
from app.reports.schedules.changes.sweep import sweep_baselines
from app.runtime.resources import Resources
from tests.helpers.api import api_client
from tests.helpers.deliveries import (
    Mailbox,
    completed_run,
    delivery_people,
    mandatory_enrollments,
)
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"
DUE = timedelta(days=14)  # the learners' due date, from now


def _body(fmt: str, recipient: str) -> dict[str, Any]:
    return {
        "name": "Mandatory training",
        "reportType": "compliance-status",
        "format": fmt,
        "parameters": {},
        "frequency": "daily",
        "timeOfDay": "05:00",
        "timezone": "UTC",
        "recipients": [recipient],
        "changes": {"mode": "both", "unchanged": "send"},
    }


async def _stored(res: Resources, job_id: str) -> bytes:
    job = await ReportJob.get(PydanticObjectId(job_id))
    assert job is not None and job.result is not None
    return b"".join(
        [chunk async for chunk in await res.storage.open_stream(job.result.storage_key)]
    )


def _marks_of_csv(data: bytes) -> dict[str, str]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header = rows[0]
    assert header[-1] == "Change", header
    name = header.index("Learner")
    return {r[name]: r[-1] for r in rows[1:]}


def _marks_of_json_lines(data: bytes) -> dict[str, str]:
    lines = [json.loads(line) for line in data.decode().splitlines() if line]
    header, rows = lines[0], lines[1:]
    assert header["columns"][-1]["key"] == "change"
    assert header["columns"][-1]["definition"].startswith("The row compared with")
    assert any(d["label"] == "Change" for d in header["definitions"])
    return {r["learnerName"]: r["change"] for r in rows}


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_each_row_of_a_csv_or_json_lines_run_carries_its_change(
    fmt: str,
    delivery_resources: Resources,
    auth: TokenFactory,
    smtp_server: Mailbox,
    run_worker: Any,
) -> None:
    people = await delivery_people(auth)
    ada, bob, _cy = await mandatory_enrollments(["Ada Archer", "Bob Baker", "Cy Cole"], due_in=DUE)
    marks_of = _marks_of_csv if fmt == "csv" else _marks_of_json_lines
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES, json=_body(fmt, str(people.ann.id)), headers=people.headers
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]

        first = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        # The first run is the baseline: every row is new to its readers.
        assert marks_of(await _stored(delivery_resources, first["id"])) == {
            "Ada Archer": "added",
            "Bob Baker": "added",
            "Cy Cole": "added",
        }

        now = utcnow()
        await ada.set({"status": "completed", "completed_at": now - timedelta(days=1)})
        await bob.set({"due_at": now - timedelta(days=2)})
        await mandatory_enrollments(["Dee Dunn"], due_in=DUE)
        second = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        expected = {
            "Ada Archer": "changed",
            "Bob Baker": "changed",
            "Cy Cole": "unchanged",
            "Dee Dunn": "added",
        }
        assert marks_of(await _stored(delivery_resources, second["id"])) == expected
        counts = second["evaluation"]["changes"]
        assert (counts["added"], counts["changed"], counts["unchanged"]) == (1, 2, 1)

        # The rows endpoint reads the mark back, typed like the other cells.
        page = await api.get(f"/api/v1/reports/jobs/{second['id']}/rows", headers=people.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["columns"][-1]["key"] == "change"
        assert {r["learnerName"]: r["change"] for r in body["rows"]} == expected

        # A run without a change report (run as an ordinary job) has no such column.
        plain = await api.post(
            "/api/v1/reports/jobs",
            json={"reportType": "compliance-status", "format": fmt, "parameters": {}},
            headers=people.headers,
        )
        assert plain.status_code == 202, plain.text
        await run_worker()
        page = await api.get(
            f"/api/v1/reports/jobs/{plain.json()['id']}/rows", headers=people.headers
        )
        assert page.status_code == 200, page.text
        assert "change" not in [c["key"] for c in page.json()["columns"]]
        assert all("change" not in r for r in page.json()["rows"])


async def test_changing_the_compared_request_starts_afresh_and_old_fingerprints_are_swept(
    delivery_resources: Resources,
    auth: TokenFactory,
    smtp_server: Mailbox,
    run_worker: Any,
) -> None:
    people = await delivery_people(auth)
    await mandatory_enrollments(["Ada Archer", "Bob Baker"], due_in=DUE)
    storage = delivery_resources.storage
    await sweep_baselines(storage)  # what earlier tests left (their schedules are gone)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES, json=_body("csv", str(people.ann.id)), headers=people.headers
        )
        schedule_id = created.json()["id"]
        url = f"{SCHEDULES}/{schedule_id}"
        await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
        second = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        assert second["evaluation"]["changes"]["firstRun"] is False
        [baseline] = (await api.get(url, headers=people.headers)).json()["changeBaselines"]
        assert baseline["jobId"] == second["id"]
        prefix = f"{BASELINES_PREFIX}{schedule_id}/"
        # The replaced baseline went at the commit: one file, the scope's baseline.
        assert len(await storage.list_keys(prefix)) == 1

        # A rename or another format compares the same rows: the baseline stays.
        renamed = await api.patch(
            url, json={"name": "Mandatory training (EU)", "format": "json"}, headers=people.headers
        )
        assert renamed.status_code == 200, renamed.text
        assert len(renamed.json()["changeBaselines"]) == 1
        # Other parameters are another request: every scope starts afresh.
        narrowed = await api.patch(
            url, json={"parameters": {"dueWithinDays": 7}}, headers=people.headers
        )
        assert narrowed.status_code == 200, narrowed.text
        assert narrowed.json()["changeBaselines"] == []
        third = await completed_run(
            api, schedule_id, people.headers, run_worker, delivery_resources
        )
        said = third["evaluation"]["changes"]
        assert said["firstRun"] is True and said["added"] == 2

        # The dropped baseline's file is left to the sweep; the new baseline stays.
        keys = await storage.list_keys(prefix)
        assert len(keys) == 2
        stray = f"{BASELINES_PREFIX}not-a-schedule/readme.txt"  # not ours: never touched
        await storage.write_stream(stray, _once(b"kept"), "text/plain")
        assert await sweep_baselines(storage) == 1
        [kept] = await storage.list_keys(prefix)
        [baseline] = (await api.get(url, headers=people.headers)).json()["changeBaselines"]
        assert kept.split("/")[-1].startswith(baseline["jobId"])
        assert await sweep_baselines(storage) == 0

        # A deleted schedule's fingerprints go with the next sweep.
        deleted = await api.delete(url, headers=people.headers)
        assert deleted.status_code == 204, deleted.text
        assert await sweep_baselines(storage) == 1
        assert await storage.list_keys(prefix) == []
        assert await storage.exists(stray)


async def _once(data: bytes) -> Any:
    yield data


def test_baseline_keys_on_disk_mark_every_row_across_blocks(tmp_path: Path) -> None:
    """Thousands of baseline keys over many 512-key blocks: every key found with its fields
    compared, keys between, before and after them not found."""
    keys = sorted({(i * 2654435761) % (1 << 64) for i in range(1, 5000)})
    records = [(f"{k:016x}", f"{k * 7 % (1 << 64):016x}") for k in keys]
    marks = BaselineKeys(tmp_path)
    marks.write(iter(records))
    try:
        for key, fields in records:
            assert marks.mark((key, fields)) == UNCHANGED
            assert marks.mark((key, f"{(int(fields, 16) + 1) % (1 << 64):016x}")) == CHANGED
        taken = set(keys)
        for probe in (0, keys[0] - 1, keys[511] + 1, keys[512] - 1, keys[-1] + 1, (1 << 64) - 1):
            if probe not in taken and 0 <= probe < (1 << 64):
                assert marks.mark((f"{probe:016x}", "0" * 16)) == ADDED
    finally:
        marks.close()
    (tmp_path / "empty").mkdir()
    empty = BaselineKeys(tmp_path / "empty")
    empty.write(iter(()))
    assert empty.mark(("00000000000000ff", "0" * 16)) == ADDED
    empty.close()
