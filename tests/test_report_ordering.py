"""Ordering and joining rows in the worker: the name order (what the collation
{"locale": "en", "strength": 2} gives), the external merge sort and its temporary files, the
worker-side part of a fact read's filter, and the bounded dimension cache."""

from __future__ import annotations

import random
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from app.reports.types import facts, ordering
from app.reports.types.ordering import name_key, sorted_rows
from app.reports.types.query import Join, split_match


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


class _Cursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        return self.docs


class _Users:
    def __init__(self, ids: list[ObjectId]) -> None:
        self.known = set(ids)
        self.asked: list[int] = []

    def find(self, query: dict[str, Any], projection: dict[str, Any]) -> _Cursor:
        wanted = query["_id"]["$in"]
        self.asked.append(len(wanted))
        return _Cursor([{"_id": i, "name": str(i)} for i in wanted if i in self.known])


async def test_dimension_cache_fetches_new_ids_once_in_batches_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(facts, "IN_BATCH", 4)
    ids = [ObjectId() for _ in range(10)]
    users = _Users(ids[:9])  # the last one has no document
    cache = facts.DimensionCache(users, Join("user_id", "users", ("name",)), size=8)  # type: ignore[arg-type]
    await cache.load(ids[:6])
    assert users.asked == [4, 2]  # $in batches of at most IN_BATCH ids
    await cache.load([*ids[:6], None])
    assert users.asked == [4, 2]  # nothing new: no query
    await cache.load(ids[6:])
    assert cache.docs[ids[9]] == {}  # a missing document joins as empty cells
    assert cache.docs[ids[6]]["name"] == str(ids[6])
    assert len(cache.docs) == 8  # the least recently used went
    assert all(i in cache.docs for i in ids[6:])  # the ones in use stay
    assert sum(i in cache.docs for i in ids[:6]) == 4
