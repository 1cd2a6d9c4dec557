"""The learning-event contract: kebab-case types only, ids filled by the service, batches with
partial success."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId

from app.learning_events.models import LearningEvent
from app.platform.models import Course, User
from tests import factories as f
from tests.helpers.tokens import TokenFactory

URL = "/api/v1/learning-events"
ALL_TYPES = {
    "course-enrolled",
    "course-started",
    "lesson-started",
    "lesson-completed",
    "quiz-started",
    "quiz-submitted",
    "quiz-passed",
    "quiz-failed",
    "course-completed",
    "certificate-issued",
}


@pytest.fixture
async def world(resources: Any) -> dict[str, Any]:
    dept = await f.department("Platform")
    learner = await f.user("Ada Learner", dept=dept)
    other = await f.user("Bob Other", dept=dept)
    course = await f.course("PY-101")
    lonely = await f.course("GO-101")
    enr = await f.enrollment(learner, course, enrolled_at=f.dt(2026, 1, 5))
    return {
        "dept": dept,
        "learner": learner,
        "other": other,
        "course": course,
        "lonely": lonely,
        "enr": enr,
    }


def body(
    learner: User, course: Course | None, type: str = "lesson-completed", **extra: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": type,
        "userId": str(learner.id),
        "occurredAt": "2026-02-01T10:00:00Z",
        "payload": {"lessonId": "l-1", "durationSeconds": 300},
        **extra,
    }
    if course is not None:
        data["courseId"] = str(course.id)
    return data


async def test_valid_event_comes_back_with_the_three_ids(
    client: httpx.AsyncClient, auth: TokenFactory, world: dict[str, Any]
) -> None:
    learner, course, enr, dept = world["learner"], world["course"], world["enr"], world["dept"]
    r = await client.post(
        URL, json=body(learner, course), headers=auth("learner", sub=str(learner.id))
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["type"] == "lesson-completed"
    assert out["courseId"] == str(course.id)
    assert out["departmentId"] == str(dept.id)
    assert out["enrollmentId"] == str(enr.id)
    assert out["payload"] == {"lessonId": "l-1", "durationSeconds": 300}
    stored = await LearningEvent.get(PydanticObjectId(out["id"]))
    assert stored is not None
    assert stored.enrollment_id == enr.id and stored.department_id == dept.id


@pytest.mark.parametrize("legacy", ["COURSE_COMPLETED", "courseCompleted", "course_completed"])
async def test_legacy_type_spelling_is_a_422_naming_the_kebab_code(
    client: httpx.AsyncClient, auth: TokenFactory, world: dict[str, Any], legacy: str
) -> None:
    r = await client.post(
        URL, json=body(world["learner"], world["course"], type=legacy), headers=auth("admin")
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "validation-failed"
    [err] = problem["errors"]
    assert err["field"] == "body.type"
    assert legacy in err["message"] and "course-completed" in err["message"]
    assert set(err["allowed"]) == ALL_TYPES


async def test_unknown_type_lists_allowed_codes(
    client: httpx.AsyncClient, auth: TokenFactory, world: dict[str, Any]
) -> None:
    r = await client.post(
        URL, json=body(world["learner"], world["course"], type="video-watched"), headers=auth()
    )
    assert r.status_code == 422
    [err] = r.json()["errors"]
    assert "video-watched" in err["message"] and set(err["allowed"]) == ALL_TYPES


@pytest.mark.parametrize(
    ("mutate", "field", "kind"),
    [
        (lambda w, b: b.update(userId=str(PydanticObjectId())), "body.userId", "unknown-user"),
        (
            lambda w, b: b.update(courseId=str(PydanticObjectId())),
            "body.courseId",
            "unknown-course",
        ),
        (lambda w, b: b.update(courseId=str(w["lonely"].id)), "body.courseId", "no-enrollment"),
        (lambda w, b: b.pop("courseId"), "body.courseId", "missing"),
    ],
)
async def test_unresolvable_references_are_422_naming_the_field(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    world: dict[str, Any],
    mutate: Any,
    field: str,
    kind: str,
) -> None:
    data = body(world["learner"], world["course"])
    mutate(world, data)
    r = await client.post(URL, json=data, headers=auth("admin"))
    assert r.status_code == 422, r.text
    [err] = r.json()["errors"]
    assert err["field"] == field and err["type"] == kind
    assert await LearningEvent.count() == 0


async def test_only_admins_post_for_other_users(
    client: httpx.AsyncClient, auth: TokenFactory, world: dict[str, Any]
) -> None:
    data = body(world["learner"], world["course"])
    for role in ("learner", "instructor", "manager"):
        r = await client.post(URL, json=data, headers=auth(role, sub=str(world["other"].id)))
        assert r.status_code == 403, role
        assert r.json()["code"] == "event-user-mismatch"
    assert (await client.post(URL, json=data)).status_code == 401
    assert (await client.post(URL, json=data, headers=auth("admin"))).status_code == 201


async def test_payload_is_checked(
    client: httpx.AsyncClient, auth: TokenFactory, world: dict[str, Any]
) -> None:
    data = body(world["learner"], world["course"], type="quiz-submitted")
    data["payload"] = {"quizId": "q1", "score": 140}
    r = await client.post(URL, json=data, headers=auth())
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.payload.score"
    data["payload"] = {"quizId": "q1", "score": 90, "courseId": "x"}
    r = await client.post(URL, json=data, headers=auth())
    assert r.status_code == 422 and "courseId" in r.json()["errors"][0]["message"]


async def test_batch_reports_each_item_and_stores_the_good_ones(
    client: httpx.AsyncClient, auth: TokenFactory, world: dict[str, Any]
) -> None:
    learner, course = world["learner"], world["course"]
    items = [
        body(learner, course, type="course-started"),
        body(learner, course, type="COURSE_COMPLETED"),
        body(learner, world["lonely"]),
        {"type": "lesson-started"},
        body(learner, course, type="quiz-submitted", payload={"quizId": "q1", "score": 88}),
        body(world["other"], course),
    ]
    r = await client.post(
        f"{URL}/batch", json={"events": items}, headers=auth("learner", sub=str(learner.id))
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["rejected"]) == (2, 4)
    statuses = [(x["index"], x["status"]) for x in out["results"]]
    assert statuses == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "rejected"),
        (3, "rejected"),
        (4, "accepted"),
        (5, "rejected"),
    ]
    res = out["results"]
    assert res[1]["errors"][0]["field"] == "body.events.1.type"
    assert "course-completed" in res[1]["errors"][0]["message"]
    assert res[2]["code"] == "validation-failed" and res[2]["errors"][0]["type"] == "no-enrollment"
    assert {e["field"] for e in res[3]["errors"]} >= {
        "body.events.3.userId",
        "body.events.3.occurredAt",
    }
    assert res[5]["code"] == "event-user-mismatch"
    stored = await LearningEvent.find_all().to_list()
    assert sorted(str(e.id) for e in stored) == sorted([res[0]["id"], res[4]["id"]])
    assert all(e.enrollment_id == world["enr"].id for e in stored)


async def test_batch_over_the_limit_is_422_naming_it(
    client: httpx.AsyncClient, auth: TokenFactory, world: dict[str, Any], settings: Any
) -> None:
    limit = settings.learning_events_batch_max
    items = [body(world["learner"], world["course"])] * (limit + 1)
    r = await client.post(f"{URL}/batch", json={"events": items}, headers=auth())
    assert r.status_code == 422
    assert str(limit) in r.json()["errors"][0]["message"]
    assert await LearningEvent.count() == 0


async def test_openapi_shows_allowed_types_and_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schema = spec["components"]["schemas"]["LearningEventCreate"]
    assert set(schema["properties"]["type"]["enum"]) == ALL_TYPES
    assert schema["examples"][0]["type"] == "quiz-submitted"
    batch = spec["components"]["schemas"]["LearningEventBatch"]
    assert batch["properties"]["events"]["items"] == {
        "$ref": "#/components/schemas/LearningEventCreate"
    }
    ops = {spec["paths"][p]["post"]["operationId"] for p in (URL, f"{URL}/batch")}
    assert ops == {"learning_events_create", "learning_events_create_batch"}
