"""A learner naming a department it does not belong to is out of scope (403, as for a
manager); a paused schedule previews no runs."""

from __future__ import annotations

from typing import Any

import httpx

from tests import factories as f

JOBS = "/api/v1/reports/jobs"
SCHEDULES = "/api/v1/reports/schedules"
TEMPLATES = "/api/v1/reports/templates"


def progress(**parameters: Any) -> dict[str, Any]:
    return {
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": {"preset": "last-30-days"}, **parameters},
    }


async def test_a_learner_naming_another_department_is_out_of_scope(
    client: httpx.AsyncClient, auth: Any
) -> None:
    alpha = await f.department("Alpha", code="ALPHA")
    bravo = await f.department("Bravo", code="BRAVO")
    ada = await f.user("Ada Lovelace", dept=alpha)
    learner = auth("learner", sub=str(ada.id), departments=[str(alpha.id)])
    manager = auth("manager", departments=[str(alpha.id)])

    for headers in (learner, manager):
        response = await client.post(
            JOBS, json=progress(departmentIds=[str(bravo.id)]), headers=headers
        )
        assert response.status_code == 403, response.text
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] == "scope-exceeded"
        assert problem["outOfScope"] == [str(bravo.id)] and problem["field"] == "departmentIds"

    # The learner's own department, or no department filter at all, are fine.
    own = await client.post(JOBS, json=progress(departmentIds=[str(alpha.id)]), headers=learner)
    assert own.status_code == 202, own.text
    assert own.json()["scope"]["userId"] == str(ada.id)
    assert (await client.post(JOBS, json=progress(), headers=learner)).status_code == 202

    # Templates check the same scope when saved.
    template = await client.post(
        TEMPLATES,
        json={"name": "Mine", **progress(departmentIds=[str(bravo.id)])},
        headers=learner,
    )
    assert template.status_code == 403 and template.json()["code"] == "scope-exceeded"


async def test_a_paused_schedule_shows_no_next_runs(client: httpx.AsyncClient, auth: Any) -> None:
    dept = await f.department("Ops")
    owner = await f.user("Mia Manager", dept=dept, roles=["manager"])
    headers = auth("manager", sub=str(owner.id), departments=[str(dept.id)])
    created = await client.post(
        SCHEDULES,
        json={
            "name": "Nightly",
            **progress(),
            "frequency": "daily",
            "timeOfDay": "02:30",
            "timezone": "Europe/Berlin",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    url = f"{SCHEDULES}/{created.json()['id']}"
    assert len(created.json()["nextRuns"]) == 5

    paused = await client.post(f"{url}/pause", json={"reason": "Holidays"}, headers=headers)
    assert paused.status_code == 200 and paused.json()["nextRuns"] == []
    assert (await client.get(url, headers=headers)).json()["nextRuns"] == []

    resumed = await client.post(f"{url}/resume", headers=headers)
    assert len(resumed.json()["nextRuns"]) == 5
