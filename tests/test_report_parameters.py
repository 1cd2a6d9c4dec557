"""Report parameters: limits come from the settings passed in (or the declared defaults, never
the environment), and the typed resolved parameters read and write a job's stored form
exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bson import ObjectId

from app.config import Settings
from app.errors import ValidationFailed
from app.reports.types import REPORT_TYPES, get_report_type
from app.security import DataScope

GOLDEN = Path(__file__).parent / "golden" / "report_rows.json"
NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)


def _errors(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    errors = exc.value.errors
    assert errors is not None
    return {e.field: e.message for e in errors}


def test_the_id_limit_comes_from_the_settings_passed_in() -> None:
    definition = get_report_type("learner-progress")
    ids = [str(ObjectId()) for _ in range(3)]
    small = Settings(max_filter_ids=2)
    with pytest.raises(ValidationFailed) as exc:
        definition.parse({"departmentIds": ids}, settings=small)
    assert _errors(exc) == {"parameters.departmentIds": "at most 2 ids are allowed, got 3"}
    with pytest.raises(ValidationFailed):
        definition.resolve({"courseIds": ids}, DataScope(), NOW, settings=small)
    assert definition.parse({"departmentIds": ids}).department_ids == ids


def test_the_date_range_limit_comes_from_the_settings_passed_in() -> None:
    definition = get_report_type("course-completion")
    week = {"dateRange": {"preset": "custom", "from": "2026-03-01", "to": "2026-03-08"}}
    with pytest.raises(ValidationFailed) as exc:
        definition.parse(week, field="body.parameters", settings=Settings(max_date_range_days=7))
    assert _errors(exc) == {
        "body.parameters.dateRange.to": "the range spans 8 days; at most 7 are allowed"
    }
    definition.parse(week, settings=Settings(max_date_range_days=8))


def test_without_settings_the_declared_defaults_apply_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_FILTER_IDS", "1")
    monkeypatch.setenv("MAX_DATE_RANGE_DAYS", "1")
    definition = get_report_type("learning-activity")
    ids = [str(ObjectId()) for _ in range(500)]
    year = {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}
    parsed = definition.parse({"courseIds": ids, "dateRange": year})
    assert len(parsed.course_ids) == 500
    with pytest.raises(ValidationFailed) as exc:
        definition.parse({"courseIds": [*ids, str(ObjectId())]})
    assert _errors(exc) == {"parameters.courseIds": "at most 500 ids are allowed, got 501"}


def test_typed_resolved_parameters_give_back_the_stored_form_exactly() -> None:
    """Every recorded job's resolved parameters, read as the type's model and written back:
    the same JSON, key order included."""
    golden = json.loads(GOLDEN.read_text())
    assert {json.loads(case["resolved"])["reportType"] for case in golden.values()} == set(
        REPORT_TYPES
    )
    for name, case in golden.items():
        stored = json.loads(case["resolved"])
        typed = get_report_type(stored["reportType"]).typed(stored)
        assert json.dumps(typed.to_document()) == case["resolved"], name


def test_resolved_parameters_stored_without_newer_options_still_read() -> None:
    """Options default as the fetchers always defaulted them when absent."""
    base = {
        "reportType": "learner-progress",
        "timezone": "UTC",
        "now": "2026-03-20T12:00:00Z",
        "dateRange": {
            "preset": "custom",
            "from": "2026-03-01",
            "to": "2026-03-31",
            "start": "2026-03-01T00:00:00Z",
            "end": "2026-04-01T00:00:00Z",
            "timezone": "UTC",
        },
    }
    progress = get_report_type("learner-progress").typed(base)
    assert progress.date_field == "enrolledAt" and progress.overdue_only is False
    assert progress.department_ids is None and progress.statuses is None
    activity = get_report_type("learning-activity").typed(base)
    assert activity.granularity == "day" and activity.event_types is None
    summary = get_report_type("department-summary").typed(base)
    assert summary.include_sub_departments is True
    results = get_report_type("assessment-results").typed(base)
    assert results.grouped is False and results.result is None
    assert get_report_type("assessment-results").columns_for(base)[0].key == "learnerName"
