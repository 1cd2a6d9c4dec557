"""Every report type's output over tests/reports_fixture.py, compared with a recorded copy.

The recorded copy (tests/golden/report_rows.json) pins rows, counts, the stored resolved
parameters, summaries, descriptions and columns byte for byte, so a change to how a report is
built cannot change what it produces unnoticed. Ids differ between runs: parameters and scopes
name departments / courses / users as `$eng`, `$py`, … and the stored copy is written back the
same way. Regenerate (only for an intended change) with `REPORT_GOLDEN_WRITE=1`.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

from app.reports.types import get_report_type
from app.runtime.resources import Resources
from app.security import DataScope
from tests.reports_fixture import NOW, build_dataset

GOLDEN = Path(__file__).parent / "golden" / "report_rows.json"
MARCH = {"preset": "custom", "from": "2026-03-01", "to": "2026-03-31"}
Q1 = {"preset": "custom", "from": "2026-01-01", "to": "2026-03-31"}

# (name, report type, parameters, scope as {departments, courses, user}: names of dataset members)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("lp-march", "learner-progress", {"dateRange": MARCH}, {}),
    ("lp-default", "learner-progress", {}, {}),
    ("lp-tokyo", "learner-progress", {"dateRange": MARCH, "timezone": "Asia/Tokyo"}, {}),
    ("lp-completed", "learner-progress", {"dateRange": Q1, "dateField": "completedAt"}, {}),
    ("lp-activity", "learner-progress", {"dateRange": Q1, "dateField": "lastActivityAt"}, {}),
    ("lp-overdue", "learner-progress", {"dateRange": Q1, "overdueOnly": True}, {}),
    (
        "lp-overdue-statuses",
        "learner-progress",
        {"dateRange": Q1, "overdueOnly": True, "statuses": ["in-progress", "completed"]},
        {},
    ),
    ("lp-statuses", "learner-progress", {"dateRange": Q1, "statuses": ["in-progress"]}, {}),
    ("lp-learner", "learner-progress", {"dateRange": MARCH}, {"user": "bob"}),
    (
        "lp-manager-plat",
        "learner-progress",
        {"dateRange": MARCH, "departmentIds": ["$plat"]},
        {"departments": ["eng", "plat"]},
    ),
    ("lp-instructor", "learner-progress", {"dateRange": Q1}, {"courses": ["py"]}),
    ("cc-march", "course-completion", {"dateRange": MARCH}, {}),
    ("cc-q1", "course-completion", {"dateRange": Q1}, {}),
    ("cc-mandatory", "course-completion", {"dateRange": Q1, "mandatoryOnly": True}, {}),
    ("cc-category", "course-completion", {"dateRange": Q1, "category": "engineering"}, {}),
    ("cc-manager", "course-completion", {"dateRange": Q1}, {"departments": ["sales"]}),
    ("ds-march", "department-summary", {"dateRange": MARCH}, {}),
    ("ds-q1", "department-summary", {"dateRange": Q1}, {}),
    ("ds-eng", "department-summary", {"dateRange": Q1, "departmentIds": ["$eng"]}, {}),
    (
        "ds-eng-only",
        "department-summary",
        {"dateRange": Q1, "departmentIds": ["$eng"], "includeSubDepartments": False},
        {},
    ),
    ("ds-manager", "department-summary", {"dateRange": Q1}, {"departments": ["eng", "plat"]}),
    ("la-day", "learning-activity", {"dateRange": MARCH}, {}),
    ("la-week", "learning-activity", {"dateRange": Q1, "granularity": "week"}, {}),
    (
        "la-month-ny",
        "learning-activity",
        {"dateRange": Q1, "granularity": "month", "timezone": "America/New_York"},
        {},
    ),
    (
        "la-types",
        "learning-activity",
        {"dateRange": Q1, "eventTypes": ["quiz-submitted", "lesson-completed"]},
        {},
    ),
    ("ar-detail", "assessment-results", {"dateRange": MARCH}, {}),
    ("ar-passed", "assessment-results", {"dateRange": Q1, "result": "passed"}, {}),
    ("ar-failed", "assessment-results", {"dateRange": Q1, "result": "failed"}, {}),
    ("ar-course", "assessment-results", {"dateRange": Q1, "groupBy": "course"}, {}),
    (
        "ar-course-passed",
        "assessment-results",
        {"dateRange": Q1, "groupBy": "course", "result": "passed"},
        {},
    ),
    ("ar-instructor", "assessment-results", {"dateRange": Q1}, {"courses": ["py"]}),
    ("cs-0320", "compliance-status", {"asOfDate": "2026-03-20"}, {}),
    ("cs-0310", "compliance-status", {"asOfDate": "2026-03-10"}, {}),
    ("cs-today", "compliance-status", {}, {}),
    (
        "cs-states",
        "compliance-status",
        {"asOfDate": "2026-03-20", "dueWithinDays": 5, "states": ["overdue", "due-soon"]},
        {},
    ),
    (
        "cs-courses",
        "compliance-status",
        {"asOfDate": "2026-03-20", "courseIds": ["$neg", "$py"], "timezone": "Europe/Berlin"},
        {},
    ),
    ("cs-manager", "compliance-status", {"asOfDate": "2026-03-20"}, {"departments": ["eng"]}),
]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    return value


async def _outcomes() -> dict[str, Any]:
    data = await build_dataset()
    members = {
        name: str(getattr(data, name).id)
        for name in ("eng", "plat", "sales", "alice", "bob", "carol", "dave", "ivy", "sec", "py")
    } | {"neg": str(data.neg.id)}
    names = {v: f"${k}" for k, v in members.items()}

    def ids(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            return members[value[1:]]
        if isinstance(value, list):
            return [ids(v) for v in value]
        if isinstance(value, dict):
            return {k: ids(v) for k, v in value.items()}
        return value

    def unids(value: Any) -> Any:
        if isinstance(value, str):
            for real, name in names.items():
                value = value.replace(real, name)
            return value
        if isinstance(value, list):
            return [unids(v) for v in value]
        if isinstance(value, dict):
            return {k: unids(v) for k, v in value.items()}
        return value

    outcomes: dict[str, Any] = {}
    for name, key, params, who in CASES:
        definition = get_report_type(key)
        scope = DataScope(
            department_ids=(
                frozenset(members[d] for d in who["departments"]) if "departments" in who else None
            ),
            course_ids=frozenset(members[c] for c in who["courses"]) if "courses" in who else None,
            user_id=members[who["user"]] if "user" in who else None,
            description="golden",
        )
        resolved = definition.resolve(definition.parse(ids(params)), scope, NOW)
        stored = json.loads(json.dumps(resolved.parameters))
        stored_scope = DataScope.from_document(json.loads(json.dumps(resolved.scope.to_document())))
        rows: list[list[Any]] = []
        plain, typed = definition.summarizer(), definition.summarizer(stored)
        async for batch in definition.fetch(stored, stored_scope, 3):
            plain.add(batch)
            typed.add(batch)
            rows.extend([_cell(v) for v in row] for row in batch)
        outcomes[name] = {
            # A string, so the key order is compared too: stored jobs keep this exact form.
            "resolved": json.dumps(unids(resolved.parameters)),
            "scope": unids(resolved.scope.to_document()),
            "count": await definition.count(stored, stored_scope),
            "columns": [[c.key, c.label, c.type.value] for c in definition.columns_for(stored)],
            "rows": rows,
            "summary": [list(f) for f in plain.figures()],
            "summaryResolved": [list(f) for f in typed.figures()],
            "describe": unids([list(p) for p in definition.describe(stored)]),
        }
    return outcomes


async def test_every_report_type_produces_the_recorded_output(resources: Resources) -> None:
    outcomes = json.loads(json.dumps(await _outcomes()))
    if os.environ.get("REPORT_GOLDEN_WRITE"):
        GOLDEN.write_text(json.dumps(outcomes, indent=1, ensure_ascii=False) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(outcomes) == sorted(golden)
    for name, outcome in outcomes.items():
        assert outcome == golden[name], name
