"""Report reads go where REPORT_READ_PREFERENCE says (with REPORT_MAX_STALENESS_SECONDS), and
only report reads: jobs, schedules and the outbox stay on the primary. A report still completes
with secondaryPreferred on the test's MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.read_preferences import Primary, SecondaryPreferred

from app.common.time import utcnow
from app.config import ReportReadPreference, Settings
from app.platform.models import Enrollment
from app.reports.deliveries.models import ReportDelivery
from app.reports.jobs.models import JobStatus, ReportJob
from app.reports.reading.preference import (
    report_database,
    report_read_preference,
    report_reads,
    use_report_reads,
)
from app.reports.schedules.models import ReportSchedule
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
BODY = {
    "reportType": "learner-progress",
    "format": "csv",
    "parameters": {"dateRange": {"preset": "last-7-days"}},
}
SECONDARY = {
    "report_read_preference": "secondaryPreferred",
    "report_max_staleness_seconds": 120,
}


@pytest.fixture
async def primary_again(settings: Settings) -> AsyncIterator[None]:
    """Whatever a test sets, the next one reads from the primary again."""
    yield
    use_report_reads(settings)


def test_primary_by_default_and_the_staleness_bound_is_checked(settings: Settings) -> None:
    assert Settings().report_read_preference == ReportReadPreference.PRIMARY
    assert settings.report_max_staleness_seconds == -1
    with pytest.raises(ValidationError, match="at least 90"):
        Settings(report_read_preference="secondaryPreferred", report_max_staleness_seconds=30)
    with pytest.raises(ValidationError, match="other than primary"):
        Settings(report_max_staleness_seconds=120)


async def test_report_collections_take_the_setting_and_the_rest_stay_on_the_primary(
    settings: Settings, resources: Resources, primary_again: None
) -> None:
    enrollments = Enrollment.get_pymongo_collection()
    assert report_reads(enrollments).read_preference == Primary()
    use_report_reads(Settings.model_validate({**settings.model_dump(), **SECONDARY}))
    wanted = SecondaryPreferred(max_staleness=120)
    assert report_read_preference() == wanted
    assert report_reads(enrollments).read_preference == wanted
    assert report_database(resources.database.db)["users"].read_preference == wanted
    for stored in (ReportJob, ReportSchedule, ReportDelivery, Enrollment):
        assert stored.get_pymongo_collection().read_preference == Primary()


async def test_a_report_completes_reading_with_secondary_preferred(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    primary_again: None,
) -> None:
    dept = await f.department("Finance", code="FIN")
    learner = await f.user("Lars Learner", dept=dept)
    await f.enrollment(learner, await f.course("FIN-1"), enrolled_at=utcnow() - timedelta(days=2))
    headers = auth("admin")
    created = await client.post(JOBS, json=BODY, headers=headers)
    assert created.status_code == 202, created.text

    # What each read of the run asked for, seen on the driver's collection objects.
    asked: list[tuple[str, str]] = []
    for name in ("find", "aggregate", "count_documents", "find_one"):
        original = getattr(AsyncCollection, name)

        def spy(self: AsyncCollection[Any], *a: Any, _o: Any = original, **k: Any) -> Any:
            asked.append((self.name, self.read_preference.mongos_mode))
            return _o(self, *a, **k)

        monkeypatch.setattr(AsyncCollection, name, spy)
    await run_worker(**SECONDARY)
    monkeypatch.undo()

    job = await ReportJob.get(created.json()["id"])
    assert job is not None and job.status == JobStatus.COMPLETED, job
    file = await client.get(f"{JOBS}/{job.id}/download", headers=headers)
    assert "Lars Learner" in file.content.decode("utf-8-sig")
    modes: dict[str, set[str]] = {}
    for collection, mode in asked:
        modes.setdefault(collection, set()).add(mode)
    assert modes["enrollments"] == {"secondaryPreferred"}  # the report's fact read
    assert modes["report_jobs"] == {"primary"}  # the job itself: claimed and committed there
