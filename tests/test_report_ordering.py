"""Ordering and joining rows in the worker: the name order (what the collation
{"locale": "en", "strength": 2} gives), the external merge sort and its temporary files, the
worker-side part of a fact read's filter, and the bounded dimension cache."""

from __future__ import annotations

import asyncio
import itertools
import random
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from app.learning_events.models import LearningEvent
from app.platform.models import Enrollment, User
from app.reports.execution.lease import Progress
from app.reports.execution.outcome import PermanentJobError
from app.reports.execution.pipeline import RowTotal
from app.reports.reading import dimensions, facts, ordering, slicing
from app.reports.reading.ordering import name_key, sorted_rows
from app.reports.reading.progress import READ_PROGRESS
from app.reports.reading.query import FactRead, Join, split_match
from app.runtime.resources import Resources
from tests import factories as f
from tests.test_report_types import run


def test_names_order_case_insensitively_and_accents_after_their_letter() -> None:
    names = [
        "Zoë", "zoe", "Émile", "emile", "Eve O'Brien", "Eve OBrien", "Eve O-Brien", "eve o brien",
        "côte", "coté", "cote", "Çelik", "Celik", "Ångström", "Andersen", "alice Adams", "Bob",
        "Mateo López", "Mateo Lopez", "Oz", "Øyvind", "Oyvind", "Straße", "Strast", None, "",
    ]  # fmt: skip
    ordered = sorted(names, key=lambda n: (name_key(n), n or ""))
    assert ordered == [
        None, "", "alice Adams", "Andersen", "Ångström", "Bob", "Celik", "Çelik", "cote", "coté",
        "côte", "emile", "Émile", "eve o brien", "Eve O-Brien", "Eve O'Brien", "Eve OBrien",
        "Mateo Lopez", "Mateo López", "Oyvind", "Øyvind", "Oz", "Straße", "Strast", "zoe", "Zoë",
    ]  # fmt: skip


def test_case_only_differences_tie_so_the_next_field_decides() -> None:
    assert name_key("müller") == name_key("Müller") == name_key("MÜLLER")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("O'Neil") < name_key("O\u2019Neil") < name_key("Oneil")
    assert name_key("Zoe") < name_key("Zoë") < name_key("Zoey")  # accents are secondary


async def _pairs(pairs: list[tuple[Any, Any]], batch: int) -> AsyncIterator[list[Any]]:
    for start in range(0, len(pairs), batch):
        yield pairs[start : start + batch]


def _scratch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


async def test_external_sort_spills_runs_and_merges_them_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scratch = _scratch(monkeypatch, tmp_path)
    monkeypatch.setattr(ordering, "FAN_IN", 3)  # several merge levels
    rng = random.Random(7)
    keys = list(range(2500))
    rng.shuffle(keys)
    pairs = [((k,), (f"row {k}", k)) for k in keys]
    seen_files: list[int] = []
    out: list[Any] = []
    async for batch in sorted_rows(_pairs(pairs, 97), 400, run_rows=100):
        assert len(batch) <= 400
        seen_files.append(sum(1 for _ in scratch.rglob("run-*")))
        out.extend(batch)
    assert [r[1] for r in out] == sorted(keys)
    assert max(seen_files) >= 1  # the runs went to disk ...
    assert list(scratch.iterdir()) == []  # ... and are gone


async def test_a_small_sort_writes_no_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    scratch = _scratch(monkeypatch, tmp_path)
    pairs = [((k,), (k,)) for k in (3, 1, 2)]
    out = [r async for b in sorted_rows(_pairs(pairs, 2), 10, run_rows=10) for r in b]
    assert out == [(1,), (2,), (3,)]
    assert list(scratch.iterdir()) == []


async def test_temporary_files_go_when_the_reader_stops_or_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scratch = _scratch(monkeypatch, tmp_path)
    pairs = [((k,), (k,)) for k in range(1000, 0, -1)]
    rows = sorted_rows(_pairs(pairs, 50), 10, run_rows=100)
    first = await anext(rows)
    assert first == [(k,) for k in range(1, 11)]
    assert any(scratch.iterdir())
    await rows.aclose()  # cancelled / stopped early
    assert list(scratch.iterdir()) == []

    async def failing() -> AsyncIterator[list[Any]]:
        yield pairs[:500]
        raise RuntimeError("read failed")

    with pytest.raises(RuntimeError):
        async for _ in sorted_rows(failing(), 10, run_rows=100):
            pass
    assert list(scratch.iterdir()) == []


def test_the_worker_side_filter_compares_as_the_server_does() -> None:
    d1, d2, c1 = ObjectId(), ObjectId(), ObjectId()
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    match = {
        "enrolled_at": {"$gte": start, "$lt": end},
        "department_id": {"$in": [d2, d1]},
        "course_id": {"$in": [c1]},
        "status": {"$nin": ["completed", "withdrawn"]},
        "due_at": {"$lt": end},
    }
    reads, keep = split_match(match, ("department_id", "enrolled_at"), naive=True)
    # One index range per department, in id order; the rest is tested here.
    assert reads == tuple(
        {"department_id": d, "enrolled_at": match["enrolled_at"]} for d in sorted([d1, d2])
    )
    assert keep is not None
    naive_due = datetime(2026, 3, 5)
    assert keep({"course_id": c1, "status": "in-progress", "due_at": naive_due})
    assert keep({"course_id": c1, "due_at": naive_due})  # $nin matches a missing status
    assert not keep({"course_id": c1, "status": "completed", "due_at": naive_due})
    assert not keep({"course_id": ObjectId(), "status": "enrolled", "due_at": naive_due})
    assert not keep({"course_id": c1, "status": "enrolled", "due_at": None})  # $lt: no null
    assert not keep({"course_id": c1, "status": "enrolled", "due_at": "2026-03-05"})  # type
    assert not keep({"course_id": c1, "status": "enrolled", "due_at": datetime(2026, 4, 2)})
    empty, _ = split_match({"department_id": {"$in": []}}, ("department_id",))
    assert empty == ()  # nothing to read


async def _users(resources: Resources, n: int) -> list[ObjectId]:
    ids = sorted(ObjectId() for _ in range(n))
    await User.get_pymongo_collection().insert_many(
        [{"_id": i, "name": f"user {k}", "email": f"u{k}@example.com"} for k, i in enumerate(ids)]
    )
    return ids


async def test_dimension_cache_fetches_new_ids_once_in_batches_and_stays_bounded(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dimensions, "IN_BATCH", 4)
    monkeypatch.setattr(dimensions, "SCAN_SHARE", 1.0)  # never worth reading the collection whole
    ids = [*await _users(resources, 9), ObjectId()]  # the last one has no document
    users = User.get_pymongo_collection()
    cache = dimensions.DimensionCache(users, Join("user_id", "users", ("name",)), size=8)
    await cache.load(ids[:6])
    assert (cache.queries, cache.asked) == (2, 6)  # $in batches of at most IN_BATCH ids
    await cache.load([*ids[:6], None])
    assert cache.queries == 2  # nothing new: no query
    await cache.load(ids[6:])
    assert cache.docs[ids[9]] == (None,)  # a missing document joins as empty cells
    assert cache.docs[ids[6]] == ("user 6",)
    assert len(cache.docs) == 8  # the least recently used went
    assert all(i in cache.docs for i in ids[6:])  # the ones in use stay
    assert sum(i in cache.docs for i in ids[:6]) == 4
    assert not cache.scanned


async def test_a_report_needing_much_of_a_dimension_reads_it_once_instead_of_id_by_id(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dimensions, "IN_BATCH", 10)
    ids = await _users(resources, 80)  # SCAN_SHARE 1/8: the 10th id asked for tips it
    users = User.get_pymongo_collection()
    cache = dimensions.DimensionCache(users, Join("user_id", "users", ("name", "email")))
    await cache.load(ids[:6])
    assert (cache.queries, cache.scanned) == (1, False)  # 6 ids: one $in
    await cache.load(ids[6:12])
    assert cache.scanned and cache.queries == 2  # then the collection, in one read
    assert len(cache.docs) == 80 and cache.fetched == 6 + 80
    await cache.load(ids[40:])
    assert cache.queries == 2  # all there
    assert cache.docs[ids[79]] == ("user 79", "u79@example.com")
    # A user added since is still found, by id; one that does not exist joins empty.
    late, absent = ObjectId(), ObjectId()
    await users.insert_one({"_id": late, "name": "late", "email": "late@example.com"})
    await cache.load([late, absent])
    assert cache.docs[late] == ("late", "late@example.com")
    assert cache.docs[absent] == (None, None)
    assert cache.queries == 3


async def test_a_collection_larger_than_the_cache_is_never_read_whole(
    resources: Resources,
) -> None:
    ids = await _users(resources, 40)
    cache = dimensions.DimensionCache(
        User.get_pymongo_collection(), Join("user_id", "users", ("name",)), size=30
    )
    await cache.load(ids[:30])
    assert not cache.scanned and cache.asked == 30 and len(cache.docs) == 30


async def test_a_date_range_is_read_in_slices_that_hold_every_document_exactly_once(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents bunched, spread out, on slice-boundary milliseconds and sharing one instant:
    each read once, with several slices and a slice size that follows the density."""
    monkeypatch.setattr(slicing, "SLICE_DOCS", 50)
    start = datetime(2026, 1, 1)
    instants = [start + timedelta(milliseconds=7 * k) for k in range(300)]  # dense at first
    instants += [start + timedelta(hours=h, microseconds=999) for h in range(1, 240)]  # sparse
    instants += [start + timedelta(days=5)] * 120  # 120 enrollments at one instant
    got, queries = await _read_sliced(instants, start, start + timedelta(days=10), monkeypatch)
    assert sorted(got) == list(range(len(instants)))  # every document, once
    assert len(queries) >= 8  # sliced
    assert queries[0]["$gte"] == start and queries[-1]["$lt"] == start + timedelta(days=10)
    for before, after in itertools.pairwise(queries):
        assert before["$lt"] == after["$gte"]  # contiguous, no gap, no overlap
        assert after["$gte"].microsecond % 1000 == 0  # on whole milliseconds


async def test_data_after_a_long_empty_stretch_is_counted_first_and_read_in_small_slices(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range whose documents begin late: the slices grow through the empty part, and the one
    that reaches the data is counted and cut back before it is read, so no read asks for much
    more than a slice's worth (a server that builds a whole result before answering would
    otherwise be silent for all of it)."""
    monkeypatch.setattr(slicing, "SLICE_DOCS", 50)
    start = datetime(2026, 1, 1)
    data_from = start + timedelta(days=20)
    instants = [data_from + timedelta(seconds=30 * k) for k in range(2000)]  # ~17 hours
    got, reads = await _read_sliced(instants, start, start + timedelta(days=30), monkeypatch)
    assert sorted(got) == list(range(len(instants)))  # every document, once
    held = [sum(r["$gte"] <= t < r["$lt"] for t in instants) for r in reads]
    assert max(held) <= 4 * 50, held  # not counted first: hundreds in one read
    assert reads[0]["$gte"] == start and reads[-1]["$lt"] == start + timedelta(days=30)
    for before, after in itertools.pairwise(reads):
        assert before["$lt"] == after["$gte"]  # contiguous, no gap, no overlap


async def _read_sliced(
    instants: list[datetime], start: datetime, end: datetime, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[int], list[dict[str, Any]]]:
    """Stores one enrollment per instant (`n` its position) and reads `[start, end)` as a
    sliced fact read: the `n`s read, and the date bounds of every query sent."""
    collection = Enrollment.get_pymongo_collection()
    await collection.insert_many(
        [
            {"enrolled_at": t, "n": k, "user_id": ObjectId(), "course_id": ObjectId()}
            for k, t in enumerate(instants)
        ]
    )
    queries: list[dict[str, Any]] = []
    real_find = collection.find

    def find(query: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        queries.append(query["enrolled_at"])
        return real_find(query, *args, **kwargs)

    monkeypatch.setattr(collection, "find", find)
    plan = FactRead(
        reads=({"enrolled_at": {"$gte": start, "$lt": end}},),
        keep=None,
        projection={"n": 1},
        joins=(),
        to_row=lambda doc, dims: (doc["n"],),
        slice_field="enrolled_at",
    )
    got = [row[0] async for batch in facts.stream_facts(collection, plan, 40) for row in batch]
    return got, queries


def test_a_read_without_a_closed_range_is_one_query() -> None:
    slices = slicing.Slices({"enrolled_at": {"$lt": datetime(2026, 2, 1)}}, "enrolled_at")
    assert slices.next() == {"enrolled_at": {"$lt": datetime(2026, 2, 1)}}
    slices.observe(8)
    assert slices.next() is None


async def test_a_filter_after_the_joins_sees_their_documents_and_is_counted_exactly(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`after_join` drops facts by their joined documents (before `to_row`, never an empty
    batch); the count reads, joins and filters a small range, and gives up on a larger one."""
    ids = await _users(resources, 6)
    missing = ObjectId()  # a learner without a document: joins as empty cells
    start = datetime(2026, 1, 1)
    collection = Enrollment.get_pymongo_collection()
    await collection.insert_many(
        [
            {
                "enrolled_at": start + timedelta(hours=k),
                "n": k,
                "user_id": user,
                "course_id": ObjectId(),
            }
            for k, user in enumerate([*ids, missing, *ids])
        ]
    )
    wanted = {"user 1", "user 4", None}
    plan = FactRead(
        reads=({"enrolled_at": {"$gte": start, "$lt": start + timedelta(days=1)}},),
        keep=lambda doc: doc["n"] != 11,  # the worker-side filter still runs first
        projection={"n": 1, "user_id": 1},
        joins=(Join("user_id", "users", ("name",)),),
        to_row=lambda doc, dims: (doc["n"], dims[0][doc["user_id"]][0]),
        after_join=lambda doc, dims: dims[0][doc["user_id"]][0] in wanted,
    )
    batches = [batch async for batch in facts.stream_facts(collection, plan, 2)]
    assert all(batches)
    assert [row for batch in batches for row in batch] == [
        (1, "user 1"),
        (4, "user 4"),
        (6, None),
        (8, "user 1"),
    ]
    assert await facts.count_facts(collection, plan) == 4
    monkeypatch.setattr(facts, "KEEP_COUNT_ROWS", 12)  # the range holds 13: not cheap
    assert await facts.count_facts(collection, plan) is None


async def test_submissions_keep_their_order_across_slices_of_the_range(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """assessment-results' rows are sorted by (submitted at, _id) by the server one slice at a
    time: with many slices, submissions sharing an instant and ids out of time order, the rows
    still come in that order, with and without the result filter (applied after the joins)."""
    monkeypatch.setattr(slicing, "SLICE_DOCS", 25)
    slices: list[dict[str, Any]] = []
    next_slice = slicing.Slices.next

    def spy(self: slicing.Slices) -> dict[str, Any] | None:
        query = next_slice(self)
        if query is not None:
            slices.append(query)
        return query

    monkeypatch.setattr(slicing.Slices, "next", spy)
    dept = await f.department("Sales")
    ada = await f.user("Ada", dept=dept)
    crs = await f.course("QZ", passing_score=50)
    rnd = random.Random(7)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    instants = [start + timedelta(minutes=rnd.randrange(60 * 24 * 20)) for _ in range(150)]
    instants += [start + timedelta(days=3)] * 40  # many submissions at one instant
    ids = [ObjectId() for _ in instants]
    rnd.shuffle(ids)  # ids out of time order
    await LearningEvent.get_pymongo_collection().insert_many(
        [
            {
                "_id": i,
                "type": "quiz-submitted",
                "user_id": ada.id,
                "course_id": crs.id,
                "department_id": dept.id,
                "occurred_at": at,
                "payload": {"quizId": f"q{k}", "score": rnd.randrange(101)},
            }
            for k, (i, at) in enumerate(zip(ids, instants, strict=True))
        ]
    )
    events = sorted(
        await LearningEvent.get_pymongo_collection().find().to_list(None),
        key=lambda e: (e["occurred_at"], e["_id"]),
    )
    march = {"preset": "custom", "from": "2026-03-01", "to": "2026-03-31"}
    rows, _, _ = await run("assessment-results", {"dateRange": march}, batch_size=7)
    assert [r[5] for r in rows] == [e["payload"]["quizId"] for e in events]
    assert len(slices) >= 5
    failed, _, _ = await run("assessment-results", {"dateRange": march, "result": "failed"})
    assert [r[5] for r in failed] == [
        e["payload"]["quizId"] for e in events if e["payload"]["score"] < 50
    ]
    assert all(r[7] is False for r in failed)


def test_a_sort_that_does_not_start_with_the_slice_field_ascending_is_one_read() -> None:
    read = {"occurred_at": {"$gte": datetime(2026, 1, 1), "$lt": datetime(2026, 2, 1)}}
    for sort in ({"occurred_at": -1}, {"score": 1, "occurred_at": 1}):
        plan = FactRead(
            reads=(read,),
            keep=None,
            projection={},
            joins=(),
            to_row=lambda doc, dims: (),
            sort=sort,
            slice_field="occurred_at",
        )
        assert slicing.slice_field(plan) is None
    assert slicing.slice_field(replace(plan, sort={"occurred_at": 1, "_id": 1})) == "occurred_at"
    assert slicing.slice_field(replace(plan, sort=None)) == "occurred_at"


class _Progress:
    """What a fact read reports to the job (`READ_PROGRESS`), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def reading(self, share: float, *, rows_follow: bool) -> None:
        self.events.append(("reading", (share, rows_follow)))

    def counted(self, rows: int) -> None:
        self.events.append(("counted", rows))

    def fetched(self, docs: int) -> None:
        """Documents read: not an event this test follows."""


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered-in-the-worker", "as-read"])
async def test_a_long_read_reports_how_far_it_has_got(
    resources: Resources, monkeypatch: pytest.MonkeyPatch, ordered: bool
) -> None:
    """A report ordered in the worker yields no row before its whole read is done: the read
    reports the share of its range done, slice by slice, and the sort the exact row count
    before the first row, so a large job's progress moves and its total is known without a
    count."""
    monkeypatch.setattr(slicing, "SLICE_DOCS", 20)
    start = datetime(2026, 1, 1)
    collection = Enrollment.get_pymongo_collection()
    await collection.insert_many(
        [
            {"enrolled_at": start + timedelta(hours=k), "n": k % 17, "user_id": ObjectId()}
            for k in range(240)
        ]
    )
    plan = FactRead(
        reads=({"enrolled_at": {"$gte": start, "$lt": start + timedelta(days=10)}},),
        keep=None,
        projection={"n": 1},
        joins=(),
        to_row=lambda doc, dims: (doc["n"],),
        order=(lambda doc, dims: (doc["n"], doc["_id"])) if ordered else None,
        slice_field="enrolled_at",
    )
    progress = _Progress()
    token = READ_PROGRESS.set(progress)
    try:
        async for batch in facts.stream_facts(collection, plan, 50):
            progress.events.append(("rows", len(batch)))
    finally:
        READ_PROGRESS.reset(token)

    shares = [share for kind, (share, _) in _of(progress.events, "reading")]
    assert len(shares) >= 5 and shares == sorted(shares) and shares[-1] == 1.0
    assert 0 < shares[0] < 0.5  # from the first slice on, not only at the end
    assert {follow for _, (_, follow) in _of(progress.events, "reading")} == {ordered}
    kinds = [kind for kind, _ in progress.events]
    if ordered:  # every share before the count, the count before the first row
        assert kinds.index("counted") > max(i for i, k in enumerate(kinds) if k == "reading")
        assert kinds.index("counted") < kinds.index("rows")
        assert dict(progress.events)["counted"] == 240
    else:  # rows come as the read goes
        assert "counted" not in kinds
        assert kinds.index("rows") < max(i for i, k in enumerate(kinds) if k == "reading")
    assert sum(n for kind, n in progress.events if kind == "rows") == 240


def _of(events: list[tuple[str, Any]], kind: str) -> list[tuple[str, Any]]:
    return [e for e in events if e[0] == kind]


def test_a_job_s_percent_moves_through_the_read_and_then_the_rows() -> None:
    """Rows that wait for the whole read: half the job's share for the read, half for the
    rows, the total from the sort; the percent never goes back."""

    async def count() -> int | None:
        return None  # too large to count cheaply

    async def scenario() -> list[float]:
        progress = Progress()
        total = RowTotal(asyncio.create_task(count()), None, "csv", progress)
        await asyncio.sleep(0)
        seen = []
        for share in (0.1, 0.5, 1.0):
            total.reading(share, rows_follow=True)
            seen.append(progress.percent)
        total.counted(200)
        assert total.known_total() == 200 and progress.rows_total == 200
        for _ in range(4):
            total.add(50)
            total.advance()
            seen.append(progress.percent)
        total.reading(0.2, rows_follow=True)  # a late, lower share moves nothing back
        seen.append(progress.percent)
        return seen

    seen = asyncio.run(scenario())
    assert seen[:3] == [5.0 + 85 * 0.05, 5.0 + 85 * 0.25, 5.0 + 85 * 0.5]
    assert seen[3:7] == [5.0 + 85 * (0.5 + 0.5 * k / 4) for k in range(1, 5)]
    assert seen[-1] == 90.0


def test_the_sorted_total_fails_a_job_past_its_row_limit_before_any_row() -> None:
    async def scenario() -> None:
        total = RowTotal(asyncio.create_task(asyncio.sleep(0, None)), 1000, "pdf", Progress())
        with pytest.raises(PermanentJobError, match="1500 rows; pdf reports are limited to 1000"):
            total.counted(1500)

    asyncio.run(scenario())
