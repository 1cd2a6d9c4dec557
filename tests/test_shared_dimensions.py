"""A small job's database work: the dimension documents a worker keeps across jobs
(`app/reports/reading/shared.py`) never hide a change from the next job, a read of a shape
seen before starts with a slice of the right size (`slicing.DENSITIES`), a job does not count
what its sort counts, and a small job's commands stay few."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.read_preferences import SecondaryPreferred

from app.platform.models import Course, Department, Enrollment, User
from app.reports.jobs.models import ReportJob
from app.reports.reading import facts, shared, slicing
from app.reports.reading.query import FactRead
from app.reports.reading.shared import SharedDimensions, share_dimensions, shared_store
from app.reports.types import get_report_type
from app.runtime.resources import Resources
from app.security import DataScope
from tests import factories as f
from tests.helpers.tokens import TokenFactory
from tests.test_report_types import run

DIMENSIONS = {"users", "courses", "departments"}
DAY = datetime(2026, 3, 10, 9, tzinfo=UTC)
ONE_DAY = {"preset": "custom", "from": "2026-03-10", "to": "2026-03-10"}


@pytest.fixture
def sharing() -> Iterator[None]:
    """Dimension documents kept across reads, as in a worker process."""
    share_dimensions()
    yield
    share_dimensions(False)


@pytest.fixture
def finds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The collection of every `find` sent from now on."""
    seen: list[str] = []
    real = AsyncCollection.find

    def spy(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        seen.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "find", spy)
    return seen


async def _one_enrollment() -> tuple[Department, User, Course]:
    dept = await f.department("Sales")
    ada = await f.user("Ada Lovelace", dept=dept)
    crs = await f.course("C-1", title="Old title", dept=dept)
    await f.enrollment(ada, crs, enrolled_at=DAY)
    return dept, ada, crs


def _cells(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [row[:5] for row in rows]  # learner, email, department, course code and title


async def test_a_renamed_course_shows_its_new_name_in_the_next_job(
    resources: Resources, sharing: None, finds: list[str]
) -> None:
    dept, ada, crs = await _one_enrollment()
    rows, _, _ = await run("learner-progress", {"dateRange": ONE_DAY})
    assert _cells(rows) == [("Ada Lovelace", ada.email, "Sales", "C-1", "Old title")]
    assert set(finds) >= DIMENSIONS  # the first read asks the server
    finds.clear()
    rows, _, _ = await run("learner-progress", {"dateRange": ONE_DAY})
    assert _cells(rows) == [("Ada Lovelace", ada.email, "Sales", "C-1", "Old title")]
    assert not DIMENSIONS & set(finds)  # nothing changed: kept from the last read
    # Changed behind the application's back (no `updated_at`): renamed, re-addressed, deleted.
    await Course.get_pymongo_collection().update_one(
        {"_id": crs.id}, {"$set": {"title": "New title"}}
    )
    await User.get_pymongo_collection().replace_one(
        {"_id": ada.id}, {"name": "Ada King", "email": "ada@example.test"}
    )
    await Department.get_pymongo_collection().delete_one({"_id": dept.id})
    finds.clear()
    rows, _, _ = await run("learner-progress", {"dateRange": ONE_DAY})
    assert _cells(rows) == [("Ada King", "ada@example.test", None, "C-1", "New title")]
    assert set(finds) >= DIMENSIONS  # the changed documents were asked for again
    # A document that did not exist and now does is found too.
    late = await f.course("C-2", title="Late course", dept=dept)
    await Enrollment.get_pymongo_collection().update_many({}, {"$set": {"course_id": late.id}})
    rows, _, _ = await run("learner-progress", {"dateRange": ONE_DAY})
    assert [row[3:5] for row in rows] == [("C-2", "Late course")]


async def test_a_document_read_while_a_change_came_by_is_not_kept(
    resources: Resources, sharing: None
) -> None:
    store = SharedDimensions(resources.database.db)
    assert await store.current(["courses"])
    key = ("courses", ("code", "title"), False)
    changed, other = ObjectId(), ObjectId()
    version = store.version("courses")  # taken before the read
    await Course.get_pymongo_collection().insert_one({"_id": changed, "code": "X", "title": "New"})
    assert await store.current(["courses"])  # another job's catch-up saw the insert
    store.keep(key, {changed: (None, None)}, version)  # what the read found: nothing
    assert store.take(key, [changed]) == {}
    store.keep(key, {other: ("Y", "Kept")}, store.version("courses"))
    assert store.take(key, [other]) == {other: ("Y", "Kept")}
    await store._reset()


async def test_a_catch_up_waits_for_its_own_mark_even_when_the_mark_was_deleted(
    resources: Resources, sharing: None
) -> None:
    """Marks of processes gone are deleted (and tests empty every collection): such a delete
    comes by in the stream too, and must not pass for the mark a catch-up waits for."""
    store = SharedDimensions(resources.database.db)
    crs = await f.course("C-1", title="Old title")
    assert await store.current(["courses"])
    key = ("courses", ("code", "title"), False)
    store.keep(key, {crs.id: ("C-1", "Old title")}, store.version("courses"))
    await resources.database.db[shared.MARKS].delete_many({})
    await Course.get_pymongo_collection().update_one(
        {"_id": crs.id}, {"$set": {"title": "New title"}}
    )
    assert await store.current(["courses"])
    assert store.take(key, [crs.id]) == {}  # the rename after the delete was seen
    await store._reset()


async def test_a_store_that_lost_its_stream_is_emptied_and_opens_again(
    resources: Resources, sharing: None
) -> None:
    store = shared_store(resources.database.db)
    assert store is not None
    assert await store.current(["courses"])
    key = ("courses", ("code",), False)
    i = ObjectId()
    store.keep(key, {i: ("C",)}, store.version("courses"))
    assert store.take(key, [i]) == {i: ("C",)}
    assert store.stream is not None
    await store.stream.close()  # e.g. the server went away
    assert not await store.current(["courses"])  # not sure of anything: nothing kept
    assert store.take(key, [i]) == {}
    assert await store.current(["courses"])  # a new stream, from now on
    await store._reset()


async def test_reads_from_a_secondary_keep_nothing(
    resources: Resources, sharing: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "report_read_preference", lambda: SecondaryPreferred())
    assert shared_store(resources.database.db) is None


async def test_a_read_of_a_shape_seen_before_starts_with_a_slice_of_its_size(
    resources: Resources, finds: list[str]
) -> None:
    """A department's day of 40 enrollments: the first read grows its slices from 1/512 of
    the range; the next read of that department starts where the density says: one query."""
    dept = ObjectId()
    collection = Enrollment.get_pymongo_collection()
    start = datetime(2026, 3, 10)
    await collection.insert_many(
        [
            {
                "enrolled_at": start + timedelta(minutes=30 * k),
                "n": k,
                "department_id": dept,
                "user_id": ObjectId(),
                "course_id": ObjectId(),
            }
            for k in range(40)
        ]
    )
    plan = FactRead(
        reads=(
            {"department_id": dept, "enrolled_at": {"$gte": start, "$lt": start + timedelta(1)}},
        ),
        keep=None,
        projection={"n": 1},
        joins=(),
        to_row=lambda doc, dims: (doc["n"],),
        slice_field="enrolled_at",
    )

    async def read() -> list[int]:
        return [r[0] async for batch in facts.stream_facts(collection, plan, 50) for r in batch]

    assert await read() == list(range(40))
    assert finds.count("enrollments") >= 4  # growing slices
    finds.clear()
    assert await read() == list(range(40))
    assert finds.count("enrollments") == 1
    other = {**plan.reads[0], "department_id": ObjectId()}  # another shape: nothing known
    assert slicing.Slices(other, "enrolled_at", collection.full_name).span < timedelta(hours=1)


async def test_a_job_does_not_count_what_its_sort_counts(resources: Resources) -> None:
    await _one_enrollment()
    definition = get_report_type("learner-progress")
    scope = DataScope(description="all data (admin)")
    stored = definition.resolve(definition.parse({"dateRange": ONE_DAY}), scope, DAY).parameters
    assert await definition.count(stored, scope) == 1
    assert await definition.count(stored, scope, alongside=True) is None  # the sort has it


async def _ops(resources: Resources) -> int:
    counters = (await resources.database.client.admin.command("serverStatus"))["opcounters"]
    return sum(int(v) for k, v in counters.items() if k != "command") + int(counters["command"])


async def test_a_small_job_sends_few_commands(
    resources: Resources,
    client: httpx.AsyncClient,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    sharing: None,
    finds: list[str],
) -> None:
    """Two small jobs in a row: the second joins from the store and reads its day in one
    query; its whole worker run (start and stop of the burst worker included) stays within a
    few commands."""
    await _one_enrollment()
    body = {"reportType": "learner-progress", "format": "csv", "parameters": {"dateRange": ONE_DAY}}
    sent: list[int] = []
    for _ in range(2):
        created = await client.post("/api/v1/reports/jobs", json=body, headers=auth("admin"))
        assert created.status_code == 202, created.text
        finds.clear()
        before = await _ops(resources)
        await run_worker()
        sent.append(await _ops(resources) - before - 1)  # less the serverStatus of `before`
        job = await ReportJob.get(created.json()["id"])
        assert job is not None and job.status == "completed" and job.result is not None
        assert job.result.row_count == 1
    assert finds.count("enrollments") == 1  # one query for the day
    assert not DIMENSIONS & set(finds)  # the learner, course and department kept
    assert sent[1] < sent[0]
    assert sent[1] <= SMALL_JOB_COMMANDS, sent


# What the second job's burst worker sends as the server counts it (`opcounters`), its start
# and stop included: 11 measured (the first job: 33), with room for a heartbeat.
SMALL_JOB_COMMANDS = 16
