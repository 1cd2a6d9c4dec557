"""The authorization matrix (spec §6): every report endpoint × role × own / foreign / shared /
out-of-scope object answers the documented status, and no response — body, list, count, file
or error message — carries data from outside the caller's scope (IDOR / BOLA).

One organisation is built per test (departments Alpha with sub-department Alpha One, and
Bravo; a course in each; learners, managers, instructors); every caller creates its own job,
template and schedule through the API, and a manager of Bravo owns the "foreign" objects."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId

from app.common.time import utcnow
from app.reports.jobs.models import ReportJob
from app.reports.schedules.models import ReportSchedule
from app.reports.schedules.scheduler import run_due_schedules
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.tokens import TokenFactory

API = "/api/v1/reports"
JOBS, TEMPLATES, SCHEDULES, META = (
    f"{API}/jobs",
    f"{API}/templates",
    f"{API}/schedules",
    f"{API}/metadata",
)
EVENTS = "/api/v1/learning-events"
RANGE = {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}
ROLES = ("admin", "manager", "instructor", "learner")


def report(fmt: str = "csv", /, **params: Any) -> dict[str, Any]:
    return {
        "reportType": "learner-progress",
        "format": fmt,
        "parameters": {"dateRange": RANGE, **params},
    }


def schedule_body(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "frequency": "daily", "timeOfDay": "07:00", **extra}


@dataclass
class World:
    ids: dict[str, str]
    headers: dict[str, dict[str, str]]
    # What each caller must never see: names, e-mails, codes and ids outside its scope.
    secrets: dict[str, set[str]]
    own: dict[str, dict[str, str]] = field(default_factory=dict)  # role -> kind -> id
    foreign: dict[str, str] = field(default_factory=dict)  # kind -> id (Bravo's manager)


@pytest.fixture
async def world(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, monkeypatch: Any
) -> World:
    monkeypatch.setattr(resources.settings, "max_active_jobs_per_user", 1000)
    alpha = await f.department("Alpha", code="ALPHA")
    alpha_one = await f.department("Alpha One", code="ALPHA1", parent=alpha)
    bravo = await f.department("Bravo", code="BRAVO")
    teacher = await f.user("Ivy Instructor", dept=alpha, roles=["instructor"])
    teacher_b = await f.user("Ike Instructor", dept=bravo, roles=["instructor"])
    course_a = await f.course("ALP-101", title="Alpha basics", dept=alpha, instructors=[teacher])
    course_b = await f.course("BRV-202", title="Bravo secrets", dept=bravo, instructors=[teacher_b])
    ada = await f.user("Ada Lovelace", dept=alpha, email="ada@alpha.test")
    anita = await f.user("Anita Borg", dept=alpha_one, email="anita@alpha.test")
    boris = await f.user("Boris Bravo", dept=bravo, email="boris@bravo.test")
    admin = await f.user("Root Admin", dept=alpha, roles=["admin"])
    manager = await f.user("Maria Manager", dept=alpha, roles=["manager"])
    manager_b = await f.user("Bert Brown", dept=bravo, roles=["manager"])
    when = f.dt(2026, 3, 1, 9)
    for learner, crs in ((ada, course_a), (anita, course_a), (boris, course_b)):
        await f.enrollment(learner, crs, enrolled_at=when, status="in-progress")
    ids = {
        "alpha": str(alpha.id),
        "alpha_one": str(alpha_one.id),
        "bravo": str(bravo.id),
        "course_a": str(course_a.id),
        "course_b": str(course_b.id),
        "ada": str(ada.id),
        "anita": str(anita.id),
        "boris": str(boris.id),
        "manager_b": str(manager_b.id),
    }
    headers = {
        "admin": auth("admin", sub=str(admin.id), name="Root Admin"),
        "manager": auth(
            "manager", sub=str(manager.id), name="Maria Manager", departments=[ids["alpha"]]
        ),
        "instructor": auth("instructor", sub=str(teacher.id), name="Ivy Instructor"),
        "learner": auth("learner", sub=ids["ada"], name="Ada Lovelace", departments=[ids["alpha"]]),
        "manager_b": auth(
            "manager", sub=ids["manager_b"], name="Bert Brown", departments=[ids["bravo"]]
        ),
    }
    bravo_things = {
        "Bravo",
        "BRAVO",
        ids["bravo"],
        "Boris",
        "boris@bravo.test",
        ids["boris"],
        "BRV-202",
        "Bravo secrets",
        ids["course_b"],
    }
    secrets = {
        "admin": set(),
        "manager": bravo_things,
        "instructor": bravo_things,
        "learner": bravo_things | {"Anita", "anita@alpha.test", ids["anita"], ids["alpha_one"]},
    }
    world = World(ids=ids, headers=headers, secrets=secrets)

    async def make(role: str, kind: str, url: str, body: dict[str, Any], status: int) -> str:
        response = await client.post(url, json=body, headers=headers[role])
        assert response.status_code == status, (role, kind, response.text)
        return str(response.json()["id"])

    for role in (*ROLES, "manager_b"):
        own = {
            "job": await make(role, "job", JOBS, report(), 202),
            "template": await make(
                role, "template", TEMPLATES, {"name": f"T {role}", **report()}, 201
            ),
            "schedule": await make(
                role, "schedule", SCHEDULES, schedule_body(f"S {role}", **report()), 201
            ),
        }
        world.own[role] = own
    world.foreign = dict(world.own.pop("manager_b"))
    world.foreign["template-org"] = await make(
        "manager_b",
        "template",
        TEMPLATES,
        {"name": "Shared org-wide", "visibility": "organization", **report()},
        201,
    )
    world.foreign["template-dept"] = await make(
        "manager_b",
        "template",
        TEMPLATES,
        {"name": "Department only", "visibility": "department", **report()},
        201,
    )
    return world


def check(results: list[str], what: str, response: httpx.Response, expected: int) -> None:
    if response.status_code != expected:
        results.append(
            f"{what}: {response.status_code} (expected {expected}) {response.text[:200]}"
        )


def leaks(world: World, role: str, text: str) -> list[str]:
    return sorted(s for s in world.secrets[role] if s in text)


# ---------------------------------------------------------------------------------------------
# Jobs (6 endpoints)

# (endpoint, method, suffix, body) — what a caller does to a job id.
JOB_ACTIONS = [
    ("jobs_get", "GET", "", None),
    ("jobs_cancel", "POST", "/cancel", None),
    ("jobs_retry", "POST", "/retry", None),
    ("jobs_download", "GET", "/download", None),
]
# Statuses on a queued job: own / foreign (admin sees all).
JOB_EXPECTED = {
    "jobs_get": {"own": 200, "foreign": 404, "admin-foreign": 200},
    "jobs_cancel": {"own": 202, "foreign": 404, "admin-foreign": 202},
    "jobs_retry": {"own": 409, "foreign": 404, "admin-foreign": 409},
    "jobs_download": {"own": 409, "foreign": 404, "admin-foreign": 409},
}


async def test_job_endpoints_matrix(client: httpx.AsyncClient, world: World) -> None:
    problems: list[str] = []
    for role in ROLES:
        headers = world.headers[role]
        # Ordered so cancel comes after the read-only actions.
        for name, method, suffix, _ in [
            JOB_ACTIONS[0],
            JOB_ACTIONS[2],
            JOB_ACTIONS[3],
            JOB_ACTIONS[1],
        ]:
            for target in ("own", "foreign"):
                job_id = world.own[role]["job"] if target == "own" else world.foreign["job"]
                key = "admin-foreign" if role == "admin" and target == "foreign" else target
                response = await client.request(method, f"{JOBS}/{job_id}{suffix}", headers=headers)
                check(problems, f"{role} {name} {target}", response, JOB_EXPECTED[name][key])
                if response.status_code == 404:
                    assert job_id in response.text  # names what was asked, nothing else
                    assert not leaks(world, role, response.text)
        # A non-ObjectId id is a 404 too, never a 500.
        check(
            problems,
            f"{role} jobs_get garbage",
            await client.get(f"{JOBS}/x'%22", headers=headers),
            404,
        )

        # list: only your own jobs, whatever the filter; another user's filter is a 403.
        listed = await client.get(JOBS, params={"limit": 100}, headers=headers)
        check(problems, f"{role} jobs_list", listed, 200)
        seen = {j["id"] for j in listed.json()["items"]}
        if role == "admin":
            assert world.foreign["job"] in seen and world.own["manager"]["job"] in seen
        else:
            assert seen == {world.own[role]["job"]}, (role, seen)
            other = await client.get(
                JOBS, params={"userId": world.ids["manager_b"]}, headers=headers
            )
            check(problems, f"{role} jobs_list other user", other, 403)

    # create: out-of-scope ids are a 403 naming them; learners only run learner-progress.
    create_cases = [
        ("manager", report(departmentIds=[world.ids["bravo"]]), 403, world.ids["bravo"]),
        ("manager", report(departmentIds=[world.ids["alpha_one"]]), 202, None),
        ("manager", report(courseIds=[world.ids["course_b"]]), 202, None),  # rows still Alpha's
        ("instructor", report(courseIds=[world.ids["course_b"]]), 403, world.ids["course_b"]),
        ("instructor", report(courseIds=[world.ids["course_a"]]), 202, None),
        ("learner", {**report(), "reportType": "course-completion"}, 403, None),
        ("learner", report(), 202, None),
        ("admin", report(departmentIds=[world.ids["bravo"]]), 202, None),
    ]
    for role, body, expected, named in create_cases:
        response = await client.post(JOBS, json=body, headers=world.headers[role])
        check(problems, f"{role} jobs_create {body['parameters']}", response, expected)
        if named:
            assert named in response.json()["detail"]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Templates (7 endpoints)

# Which templates each role may see / change.
VISIBLE = {
    "admin": {"own", "foreign", "template-org", "template-dept"},
    "manager": {"own", "template-org"},  # Bravo's department template is not Alpha's
    "instructor": {"own", "template-org"},
    "learner": {"own"},  # learners see only their own
}


def template_id(world: World, role: str, target: str) -> str:
    if target == "own":
        return world.own[role]["template"]
    return world.foreign["template" if target == "foreign" else target]


def template_expected(role: str, target: str, action: str) -> int:
    visible = target in VISIBLE[role]
    owner = target == "own" or role == "admin"
    ok = {"get": 200, "update": 200, "delete": 204, "duplicate": 201, "run": 202}[action]
    if not visible:
        return 404  # never 403: the caller must not learn that it exists
    if action in ("update", "delete") and not owner:
        return 403
    return ok


async def test_template_endpoints_matrix(client: httpx.AsyncClient, world: World) -> None:
    problems: list[str] = []
    targets = ("own", "foreign", "template-org", "template-dept")
    for role in ROLES:
        headers = world.headers[role]
        for target in targets:
            tid = template_id(world, role, target)
            for action, method, suffix, body in (
                ("get", "GET", "", None),
                ("duplicate", "POST", "/duplicate", None),
                ("run", "POST", "/run", None),
                ("update", "PATCH", "", {"description": f"touched by {role}"}),
            ):
                response = await client.request(
                    method, f"{TEMPLATES}/{tid}{suffix}", json=body, headers=headers
                )
                check(
                    problems,
                    f"{role} templates_{action} {target}",
                    response,
                    template_expected(role, target, action),
                )
                assert not leaks(world, role, response.text), (role, action, target)
                if action == "run" and response.status_code == 202:
                    await _assert_runner_scope(world, role, response.json())

        listed = await client.get(TEMPLATES, params={"limit": 100}, headers=headers)
        check(problems, f"{role} templates_list", listed, 200)
        page = listed.json()
        originals = {template_id(world, role, t) for t in VISIBLE[role]}
        seen = {t["id"] for t in page["items"]}
        assert originals <= seen, (role, originals - seen)
        hidden = {template_id(world, role, t) for t in targets} - originals
        assert not hidden & seen, (role, hidden & seen)
        assert page["total"] == len(page["items"])  # the count leaks nothing either
        assert not leaks(world, role, listed.text), (role, leaks(world, role, listed.text))

    # delete last: owner or admin only; invisible is 404.
    for role in ROLES:
        for target in ("template-dept", "template-org", "foreign", "own"):
            tid = template_id(world, role, target)
            expected = template_expected(role, target, "delete")
            if role == "admin" and target != "own":
                continue  # the admin deleting them would change the other rows
            response = await client.delete(f"{TEMPLATES}/{tid}", headers=world.headers[role])
            check(problems, f"{role} templates_delete {target}", response, expected)
    response = await client.delete(
        f"{TEMPLATES}/{world.foreign['template']}", headers=world.headers["admin"]
    )
    check(problems, "admin templates_delete foreign", response, 204)

    # create: a template cannot carry ids outside its author's scope.
    for role, params, expected in (
        ("manager", {"departmentIds": [world.ids["bravo"]]}, 403),
        ("instructor", {"courseIds": [world.ids["course_b"]]}, 403),
        ("manager", {"departmentIds": [world.ids["alpha_one"]]}, 201),
    ):
        body = {"name": "scoped", **report(**params)}
        check(
            problems,
            f"{role} templates_create {params}",
            await client.post(TEMPLATES, json=body, headers=world.headers[role]),
            expected,
        )
    assert not problems, "\n".join(problems)


async def _assert_runner_scope(world: World, role: str, job: dict[str, Any]) -> None:
    """A template runs with the runner's scope, never its author's."""
    scope = job["scope"]
    if role == "admin":
        assert scope["departmentIds"] is None and scope["courseIds"] is None
    elif role == "manager":
        assert sorted(scope["departmentIds"]) == sorted(
            [world.ids["alpha"], world.ids["alpha_one"]]
        )
    elif role == "instructor":
        assert scope["courseIds"] == [world.ids["course_a"]]
    else:
        assert scope["userId"] == world.ids["ada"]
    assert job["requestedBy"]["name"] != "Bert Brown"


async def test_deleting_a_template_names_only_the_schedules_the_caller_may_see(
    client: httpx.AsyncClient, world: World
) -> None:
    shared = world.foreign["template-org"]
    body = schedule_body("Maria's secret schedule", templateId=shared)
    created = await client.post(SCHEDULES, json=body, headers=world.headers["manager"])
    assert created.status_code == 201, created.text
    refused = await client.delete(f"{TEMPLATES}/{shared}", headers=world.headers["manager_b"])
    assert refused.status_code == 409
    assert "Maria's secret schedule" not in refused.text
    assert created.json()["id"] not in refused.text
    assert "1 schedule of other users" in refused.json()["detail"]
    admin = await client.delete(f"{TEMPLATES}/{shared}", headers=world.headers["admin"])
    assert admin.status_code == 409 and "Maria's secret schedule" in admin.text


# ---------------------------------------------------------------------------------------------
# Schedules (9 endpoints)

SCHEDULE_ACTIONS = [
    ("get", "GET", "", None, 200),
    ("runs", "GET", "/runs", None, 200),
    ("update", "PATCH", "", {"description": "changed"}, 200),
    ("pause", "POST", "/pause", None, 200),
    ("resume", "POST", "/resume", None, 200),
    ("run_now", "POST", "/run-now", None, 202),
    ("delete", "DELETE", "", None, 204),
]


async def test_schedule_endpoints_matrix(client: httpx.AsyncClient, world: World) -> None:
    problems: list[str] = []
    for role in ROLES:
        headers = world.headers[role]
        for target in ("foreign", "own"):
            sid = world.own[role]["schedule"] if target == "own" else world.foreign["schedule"]
            for action, method, suffix, body, ok in SCHEDULE_ACTIONS:
                if role == "admin" and target == "foreign" and action == "delete":
                    continue  # kept for the other roles
                expected = ok if target == "own" or role == "admin" else 404
                response = await client.request(
                    method, f"{SCHEDULES}/{sid}{suffix}", json=body, headers=headers
                )
                check(problems, f"{role} schedules_{action} {target}", response, expected)
                assert not leaks(world, role, response.text), (role, action, target)
                if action == "run_now" and response.status_code == 202:
                    job = response.json()
                    owner = role if target == "own" else "manager_b"
                    # Runs as the schedule's owner, with the owner's scope.
                    assert job["requestedBy"]["userId"] == _sub(world, owner)
                    if owner == "manager_b":
                        assert job["scope"]["departmentIds"] == [world.ids["bravo"]]

        listed = await client.get(SCHEDULES, params={"limit": 100}, headers=headers)
        check(problems, f"{role} schedules_list", listed, 200)
        seen = {s["id"] for s in listed.json()["items"]}
        if role != "admin":
            assert seen == set(), (role, seen)  # own one deleted above
            assert listed.json()["total"] == 0
            assert not leaks(world, role, listed.text)

    for role, params, expected in (
        ("manager", report(departmentIds=[world.ids["bravo"]]), 403),
        ("instructor", report(courseIds=[world.ids["course_b"]]), 403),
        ("learner", {**report(), "reportType": "department-summary"}, 403),
        ("learner", report(), 201),
    ):
        response = await client.post(
            SCHEDULES, json=schedule_body("x", **params), headers=world.headers[role]
        )
        check(problems, f"{role} schedules_create", response, expected)
    # A template the caller cannot see is not a way in either.
    hidden = schedule_body("x", templateId=world.foreign["template"])
    response = await client.post(SCHEDULES, json=hidden, headers=world.headers["manager"])
    check(problems, "manager schedules_create with a hidden template", response, 422)
    assert "Bravo" not in response.text
    assert not problems, "\n".join(problems)


def _sub(world: World, role: str) -> str:
    token = world.headers[role]["Authorization"].split()[1].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return str(claims["sub"])


async def test_scheduled_runs_use_the_owners_scope(
    client: httpx.AsyncClient, world: World, resources: Resources
) -> None:
    """A schedule of Alpha's manager built on Bravo's shared template runs with Alpha's scope;
    the admin's schedule with everything."""
    shared = world.foreign["template-org"]
    body = schedule_body("Alpha via Bravo", templateId=shared)
    created = await client.post(SCHEDULES, json=body, headers=world.headers["manager"])
    assert created.status_code == 201, created.text
    # The owner must exist as an active user with the role (the scheduler re-checks).
    await ReportSchedule.get_pymongo_collection().update_many(
        {}, {"$set": {"next_run_at": utcnow() - timedelta(seconds=5)}}
    )
    assert await run_due_schedules(resources) >= 1
    job = await ReportJob.find_one({"schedule_id": _oid(created.json()["id"])})
    assert job is not None and job.scope is not None
    assert sorted(job.scope["departmentIds"]) == sorted(
        [world.ids["alpha"], world.ids["alpha_one"]]
    )
    assert job.requested_by.name == "Maria Manager"


def _oid(value: str) -> Any:
    return PydanticObjectId(value)


# ---------------------------------------------------------------------------------------------
# Files: the rows a report holds, and who may download it


async def test_reports_hold_only_in_scope_rows_and_foreign_files_cannot_be_downloaded(
    client: httpx.AsyncClient, world: World, run_worker: Any
) -> None:
    await run_worker()
    expected = {
        "admin": {"Ada Lovelace", "Anita Borg", "Boris Bravo"},
        "manager": {"Ada Lovelace", "Anita Borg"},
        "instructor": {"Ada Lovelace", "Anita Borg"},
        "learner": {"Ada Lovelace"},
    }
    for role in ROLES:
        job_id = world.own[role]["job"]
        response = await client.get(f"{JOBS}/{job_id}/download", headers=world.headers[role])
        assert response.status_code == 200, (role, response.text)
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        header = rows[0]
        names = {r[header.index("Learner")] for r in rows[1:] if r}
        assert names == expected[role], (role, names)
        assert not leaks(world, role, response.text), (role, leaks(world, role, response.text))
        for other in ROLES:
            if other == role:
                continue
            foreign = await client.get(
                f"{JOBS}/{world.own[other]['job']}/download", headers=world.headers[role]
            )
            assert foreign.status_code == (200 if role == "admin" else 404), (role, other)
        # The admin's file (everything) is out of reach for everybody else.
        if role != "admin":
            admins = await client.get(
                f"{JOBS}/{world.own['admin']['job']}/download", headers=world.headers[role]
            )
            assert admins.status_code == 404
        bravo = await client.get(
            f"{JOBS}/{world.foreign['job']}/download", headers=world.headers[role]
        )
        assert bravo.status_code == (200 if role == "admin" else 404)


async def test_a_download_is_refused_once_the_caller_lost_the_scope(
    client: httpx.AsyncClient, world: World, run_worker: Any, auth: TokenFactory
) -> None:
    await run_worker()
    job_id = world.own["manager"]["job"]
    moved = auth("manager", sub=_sub(world, "manager"), departments=[world.ids["alpha_one"]])
    response = await client.get(f"{JOBS}/{job_id}/download", headers=moved)
    assert response.status_code == 403
    assert response.json()["code"] == "job-access-revoked"
    assert "Ada" not in response.text


# ---------------------------------------------------------------------------------------------
# Metadata (7 endpoints) and filter options


async def test_metadata_matrix_and_filter_options_stay_in_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    problems: list[str] = []
    learner_only = {"learner-progress"}
    for role in ROLES:
        headers = world.headers[role]
        for path, expected in (
            ("/report-types", 200),
            ("/report-types/learner-progress", 200),
            ("/report-types/course-completion", 403 if role == "learner" else 200),
            ("/report-types/no-such-type", 404),
            ("/formats", 200),
            ("/lookups", 200),
            ("/lookups/report-status", 200),
            ("/lookups/no-such-category", 404),
            ("/date-range-presets?timezone=Europe/Berlin", 200),
            ("/date-range-presets?timezone=Mars/Olympus", 422),
        ):
            response = await client.get(f"{META}{path}", headers=headers)
            check(problems, f"{role} metadata {path}", response, expected)
        types = {
            t["key"] for t in (await client.get(f"{META}/report-types", headers=headers)).json()
        }
        assert (types == learner_only) == (role == "learner"), (role, types)

    options = {
        "admin": {
            "departments": {"Alpha", "Alpha One", "Bravo"},
            "courses": {"ALP-101", "BRV-202"},
            "users": {"Ada Lovelace", "Anita Borg", "Boris Bravo"},
        },
        "manager": {
            "departments": {"Alpha", "Alpha One"},
            "courses": {"ALP-101"},
            "users": {"Ada Lovelace", "Anita Borg"},
        },
        "instructor": {
            "departments": {"Alpha", "Alpha One"},
            "courses": {"ALP-101"},
            "users": {"Ada Lovelace", "Anita Borg"},
        },
        "learner": {"departments": {"Alpha"}, "courses": {"ALP-101"}, "users": {"Ada Lovelace"}},
    }
    for role in ROLES:
        for kind, wanted in options[role].items():
            response = await client.get(
                f"{META}/filter-options/{kind}", params={"limit": 100}, headers=world.headers[role]
            )
            check(problems, f"{role} filter-options {kind}", response, 200)
            labels = {i["label"].split(" — ")[0] for i in response.json()["items"]}
            staff = {
                "Ivy Instructor",
                "Ike Instructor",
                "Root Admin",
                "Maria Manager",
                "Bert Brown",
            }
            assert labels - staff == wanted, (role, kind, labels)
            assert not leaks(world, role, response.text), (role, kind)
            # Searching for what lies outside the scope finds nothing.
            search = await client.get(
                f"{META}/filter-options/{kind}", params={"q": "bravo"}, headers=world.headers[role]
            )
            if role != "admin":
                assert search.json()["items"] == [], (role, kind, search.text)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Learning events (2 endpoints)


async def test_learning_events_only_for_oneself_unless_admin(
    client: httpx.AsyncClient, world: World
) -> None:
    problems: list[str] = []

    def event(user: str) -> dict[str, Any]:
        return {
            "type": "lesson-completed",
            "userId": world.ids[user],
            "courseId": world.ids["course_a"] if user != "boris" else world.ids["course_b"],
            "occurredAt": "2026-03-02T10:00:00Z",
        }

    for role, user, expected in (
        ("learner", "ada", 201),
        ("learner", "anita", 403),
        ("learner", "boris", 403),
        ("manager", "ada", 403),
        ("instructor", "ada", 403),
        ("admin", "boris", 201),
    ):
        response = await client.post(EVENTS, json=event(user), headers=world.headers[role])
        check(problems, f"{role} learning_events_create for {user}", response, expected)
        if expected == 403:
            assert "Boris" not in response.text and "Bravo secrets" not in response.text

    batch = {"events": [event("ada"), event("boris")]}
    response = await client.post(f"{EVENTS}/batch", json=batch, headers=world.headers["learner"])
    check(problems, "learner learning_events_create_batch", response, 200)
    result = response.json()
    assert [r["status"] for r in result["results"]] == ["accepted", "rejected"]
    assert result["results"][1]["code"] == "event-user-mismatch"
    assert not re.search(r"Boris|BRV-202|Bravo secrets", response.text)
    assert not problems, "\n".join(problems)
