"""LookupValue: the categories of spec §3 (and the compliance states and course categories),
idempotent seeding, the validation utility."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from app.learning_events.models import LearningEvent
from app.lookups import validation
from app.lookups.codes import ReportTypeCode
from app.lookups.models import LookupValue
from app.lookups.seed import seed_lookups
from app.lookups.validation import LookupCode, check_code
from app.reports.formats import FORMATS
from app.reports.types import REPORT_TYPES
from tests import factories as f
from tests.helpers.tokens import TokenFactory

SPEC_CODES = {
    # The registries are the one list (the six types of the spec are pinned in
    # test_report_types.test_catalogue_shape, the formats in test_formats).
    "report-type": set(REPORT_TYPES),
    "report-status": {"queued", "running", "completed", "failed", "cancelled", "expired"},
    "report-format": set(FORMATS),
    "template-visibility": {"private", "department", "organization"},
    "schedule-frequency": {"daily", "weekly", "monthly", "quarterly", "cron"},
    "date-range-preset": {"today", "yesterday", "last-7-days", "last-30-days", "this-month",
                          "last-month", "this-quarter", "last-quarter", "year-to-date",
                          "last-year", "custom"},
    "learning-event-type": {"course-enrolled", "course-started", "lesson-started",
                            "lesson-completed", "quiz-started", "quiz-submitted", "quiz-passed",
                            "quiz-failed", "course-completed", "certificate-issued"},
    "enrollment-status": {"enrolled", "in-progress", "completed", "failed", "withdrawn"},
    # The compliance-status report's states, so its files print their labels.
    "compliance-state": {"compliant", "completed-late", "overdue", "due-soon", "not-due"},
    # The courses' categories, so reports print their labels.
    "course-category": {"compliance", "engineering", "sales", "leadership", "customer-success",
                        "productivity"},
}  # fmt: skip


@pytest.fixture
async def restore_active(resources: Any) -> Any:
    """The lookup table outlives a test (operator switches survive re-seeding): undo ours."""
    yield
    await LookupValue.get_pymongo_collection().update_many({}, {"$set": {"is_active": True}})
    await validation.refresh(force=True)


async def _stored() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    async for doc in LookupValue.get_pymongo_collection().find({}, {"category": 1, "code": 1}):
        found.setdefault(doc["category"], set()).add(doc["code"])
    return found


async def test_exactly_the_spec_categories_with_their_codes(resources: Any) -> None:
    stored = await _stored()
    assert stored == SPEC_CODES
    assert all(validation.validate_kebab(c) for codes in stored.values() for c in codes)


async def test_seeding_twice_changes_nothing_and_keeps_operator_switches(
    resources: Any, restore_active: Any
) -> None:
    coll = LookupValue.get_pymongo_collection()
    total = await coll.count_documents({})
    before = await coll.find_one({"category": "report-format", "code": "pdf"})
    assert before is not None
    await coll.update_one({"_id": before["_id"]}, {"$set": {"label": "Old label"}})
    await coll.update_one(
        {"category": "schedule-frequency", "code": "quarterly"}, {"$set": {"is_active": False}}
    )

    summary = await seed_lookups()
    assert summary.inserted == 0 and summary.updated == 1
    again = await seed_lookups()
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, total)

    assert await coll.count_documents({}) == total
    after = await coll.find_one({"category": "report-format", "code": "pdf"})
    assert after is not None and after["_id"] == before["_id"] and after["label"] == "PDF"
    quarterly = await coll.find_one({"category": "schedule-frequency", "code": "quarterly"})
    assert quarterly is not None and quarterly["is_active"] is False
    assert await _stored() == SPEC_CODES


class _Form(BaseModel):
    frequency: LookupCode("schedule-frequency")  # type: ignore[valid-type]


async def test_inactive_codes_are_refused_for_new_data_but_old_data_reads(
    resources: Any, restore_active: Any, client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    await LookupValue.get_pymongo_collection().update_many(
        {"code": {"$in": ["quarterly", "certificate-issued"]}}, {"$set": {"is_active": False}}
    )
    await validation.refresh(force=True)

    with pytest.raises(ValidationError) as exc:
        _Form(frequency="quarterly")
    [err] = exc.value.errors()
    assert err["type"] == "lookup_code_inactive" and "quarterly" not in err["ctx"]["allowed"]
    assert _Form(frequency="weekly").frequency == "weekly"
    assert check_code("schedule-frequency", "quarterly", include_inactive=True) == "quarterly"

    dept = await f.department()
    learner = await f.user(dept=dept)
    course = await f.course()
    enr = await f.enrollment(learner, course, enrolled_at=f.dt(2025, 1, 1))
    old = await f.event("certificate-issued", learner, occurred_at=f.dt(2025, 2, 1), enr=enr)
    reread = await LearningEvent.get(old.id)
    assert reread is not None and reread.type == "certificate-issued"

    r = await client.post(
        "/api/v1/learning-events",
        json={
            "type": "certificate-issued",
            "userId": str(learner.id),
            "courseId": str(course.id),
            "occurredAt": "2026-01-01T00:00:00Z",
        },
        headers=auth("admin"),
    )
    assert r.status_code == 422
    [problem] = r.json()["errors"]
    assert problem["field"] == "body.type" and problem["type"] == "lookup_code_inactive"
    assert "certificate-issued" not in problem["allowed"]


async def test_unknown_code_error_names_value_and_allowed(resources: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        _Form(frequency="Fortnightly")
    [err] = exc.value.errors()
    assert "'Fortnightly'" in err["msg"]
    assert err["ctx"]["allowed"] == ["daily", "weekly", "monthly", "quarterly", "cron"]


async def test_the_report_type_codes_are_the_report_type_registry(resources: Any) -> None:
    """Seeded from the registry (key, name as label, description, order), never typed twice."""
    stored = [
        (d["code"], d["label"], d["description"], d["sort_order"])
        for d in await LookupValue.get_pymongo_collection()
        .find({"category": "report-type"})
        .sort("sort_order")
        .to_list()
    ]
    expected = [
        (d.key, d.name, d.description, order) for order, d in enumerate(REPORT_TYPES.values())
    ]
    assert stored == expected
    assert validation.allowed_codes("report-type") == list(REPORT_TYPES)
    assert list(validation.builtin_values()["report-type"]) == list(REPORT_TYPES)


async def test_the_report_format_codes_are_the_format_registry(resources: Any) -> None:
    """Seeded from the format specs (key, label, description, content type), never typed twice:
    the lookup, the metadata API and the download name one content type per format."""
    stored = [
        (d["code"], d["label"], d["description"], d["metadata"])
        for d in await LookupValue.get_pymongo_collection()
        .find({"category": "report-format"})
        .sort("sort_order")
        .to_list()
    ]
    expected = [
        (s.key, s.label, s.description, {"contentType": s.content_type}) for s in FORMATS.values()
    ]
    assert stored == expected
    assert validation.allowed_codes("report-format") == list(FORMATS)


def test_a_report_type_code_field_lists_the_registered_types_in_its_schema() -> None:
    class Form(BaseModel):
        report_type: ReportTypeCode

    schema = Form.model_json_schema()["properties"]["report_type"]
    assert schema["enum"] == list(REPORT_TYPES)
    assert schema["x-lookup-category"] == "report-type"
