"""A run's rows compared with its baseline, in bounded memory.

While the rows stream (the same pass as the summary), each row's fingerprint (key hash, hash of
the compared fields, the row's name and compared values: `types.changes`) is kept; runs of
`RUN_RECORDS` are sorted by key hash and spilled to the job's scratch directory, then merged
(`heapq.merge`, like `reading.ordering`). The merged stream is joined with the baseline's
fingerprints (stored sorted, gzip JSON Lines, in the storage backend) in one pass: keys only in
the run were added, keys only in the baseline left, keys in both with another fields hash
changed. The pass writes this run's fingerprints (the next baseline) and the list of changes
(CSV) as it goes; only the counts and the first `SAMPLE_LINES` changes stay in memory.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import heapq
import json
import pickle
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

from app.reports.jobs.evaluation import ChangeOutcome
from app.reports.reading.query import Row
from app.reports.schedules.changes.marks import BaselineKeys
from app.reports.schedules.changes.models import Baseline
from app.reports.schedules.changes.words import change_line, summary_words
from app.reports.types.changes import ChangeSpec, Fingerprint, RowFingerprints
from app.storage import Storage

RUN_RECORDS = 10_000  # fingerprints sorted in memory at a time
CHUNK_RECORDS = 50  # fingerprints per pickled chunk of a run file (what the merge holds per run)
SAMPLE_LINES = 20  # changes named in a message (the file has all of them)
SECTION_ROWS = 500  # changes listed in an Excel or PDF file's "Changes since" section
UPLOAD_CHUNK = 1 << 20
LINE_RECORDS = 500  # fingerprints per line of a stored baseline

_by_key = itemgetter(0)


@dataclass(frozen=True)
class ChangeTargets:
    baseline_key: str  # where this run's fingerprints go (the next baseline)
    file_key: str  # where the list of changes goes (CSV)


def _write_run(path: Path, records: Iterator[Fingerprint]) -> Path:
    with path.open("wb") as fh:
        while chunk := list(islice(records, CHUNK_RECORDS)):
            pickle.dump(chunk, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _read_run(path: Path) -> Iterator[Fingerprint]:
    with path.open("rb") as fh:
        while True:
            try:
                chunk = pickle.load(fh)
            except EOFError:
                return
            yield from chunk


def _read_baseline(path: Path) -> Iterator[Fingerprint]:
    """A baseline's fingerprints: gzip JSON Lines, each line a list of `LINE_RECORDS`."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield from json.loads(line)


class ChangeTracker:
    """Collects a run's fingerprints (`add`, per batch) and compares them (`compare`) with the
    baseline pinned before the rows (`pin`); with `marks`, `add` also tells each row's mark."""

    def __init__(self, spec: ChangeSpec, columns: Sequence[str], workdir: Path) -> None:
        self.spec = spec
        self.prints = RowFingerprints(spec, columns)
        self.workdir = workdir
        self.run: list[Fingerprint] = []
        self.runs: list[Path] = []
        # The first changes as the report file's section shows them, and how many there are.
        self.section: list[tuple[str, str, str, str, str]] = []
        self.listed = 0
        self.baseline: Baseline | None = None  # what the run is compared with (`pin`)
        self._downloaded: Path | None = None
        self.marks: BaselineKeys | None = None
        self.marking = False  # whether the rows were marked (the file has a `change` column)

    async def pin(self, storage: Storage, baseline: Baseline | None, marks: bool) -> None:
        """The baseline this run is compared with, fetched once; `marks`: index it so `add`
        marks each row (a CSV / JSON Lines file's `change` column)."""
        self.baseline = baseline
        if baseline is not None:
            self._downloaded = self.workdir / "baseline.jsonl.gz"
            with self._downloaded.open("wb") as fh:
                async for chunk in await storage.open_stream(baseline.key):
                    fh.write(chunk)
        self.marking = marks
        if marks:
            self.marks = BaselineKeys(self.workdir)
            records = _read_baseline(self._downloaded) if self._downloaded else iter(())
            await asyncio.to_thread(self.marks.write, records)

    def add(self, batch: Sequence[Row]) -> list[str] | None:
        """Keeps the batch's fingerprints; with `marks`, returns each row's mark."""
        of = self.prints.of
        prints = [of(row) for row in batch]
        self.run.extend(prints)
        if len(self.run) >= RUN_RECORDS:
            self._spill()
        marks = self.marks
        return None if marks is None else [marks.mark(p) for p in prints]

    def _spill(self) -> None:
        self.run.sort(key=_by_key)
        path = self.workdir / f"changes-run-{len(self.runs):05d}.pickle"
        self.runs.append(_write_run(path, iter(self.run)))
        self.run = []

    def _sorted(self) -> Iterator[Fingerprint]:
        self.run.sort(key=_by_key)
        streams = [_read_run(p) for p in self.runs]
        merged = heapq.merge(*streams, iter(self.run), key=_by_key)
        last = None
        for record in merged:  # one row per key: a repeated key keeps its first row
            if record[0] != last:
                last = record[0]
                yield record

    async def compare(
        self, storage: Storage, targets: ChangeTargets | None
    ) -> tuple[ChangeOutcome, int, int]:
        """The outcome (counts, words, first lines) against the pinned baseline, with this
        run's fingerprints and the list of changes stored under `targets` (None: nothing is
        stored, as evaluate asks); also the changes file's size and changed rows."""
        baseline, old = self.baseline, self._downloaded
        if self.marks is not None:  # the rows are all in: the keys' files are done with
            self.marks.close()
            self.marks = None
        new = self.workdir / "fingerprints.jsonl.gz"
        listed = self.workdir / "changes.csv"
        outcome = await asyncio.to_thread(
            self._join,
            _read_baseline(old) if old is not None else iter(()),
            new,
            listed,
            baseline is not None,
        )
        outcome.first_run = baseline is None
        if baseline is not None:
            outcome.since, outcome.baseline_job_id = baseline.taken_at, baseline.job_id
        outcome.summary = summary_words(self.spec, outcome)
        changed = outcome.added + outcome.left + outcome.changed
        if targets is None:
            return outcome, listed.stat().st_size, changed
        await storage.write_stream(targets.baseline_key, _chunks(new), "application/gzip")
        stored = await storage.write_stream(
            targets.file_key, _chunks(listed), "text/csv; charset=utf-8"
        )
        outcome.baseline_key, outcome.file_key = targets.baseline_key, targets.file_key
        return outcome, stored.size_bytes, changed

    def _join(
        self, before: Iterator[Fingerprint], new: Path, listed: Path, compared: bool
    ) -> ChangeOutcome:
        """One pass over both sorted streams. Without a baseline (`compared` false: the first
        run) every row is counted as added but not listed: the report itself lists them."""
        outcome = ChangeOutcome()
        labels = self.prints.field_labels
        tests = [
            (t, self.prints.field_keys.index(t.field))
            for t in self.spec.transitions
            if t.field in self.prints.field_keys
        ]
        transitions: dict[str, int] = {}
        same = 0  # a local count: the pydantic model's attribute costs per row
        with (
            gzip.open(new, "wt", encoding="utf-8", compresslevel=1) as out,
            listed.open("w", encoding="utf-8", newline="") as changes_file,
        ):
            writer = csv.writer(changes_file)
            writer.writerow(["change", self.spec.noun, "field", "before", "after"])

            def list_change(
                change: str, name: str, label: str = "", b: Any = None, a: Any = None
            ) -> None:
                cells = (change, name, label, _cell(b), _cell(a))
                writer.writerow(cells)
                self.listed += 1
                if len(self.section) < SECTION_ROWS:
                    self.section.append(cells)

            def note(line: str) -> None:
                if len(outcome.lines) < SAMPLE_LINES:
                    outcome.lines.append(line)

            line: list[Fingerprint] = []
            for kind, old, cur in _joined(before, self._sorted()):
                if cur is not None:
                    line.append(cur)
                    if len(line) == LINE_RECORDS:
                        out.write(json.dumps(line, separators=(",", ":")) + "\n")
                        line = []
                if kind == "added":
                    assert cur is not None
                    outcome.added += 1
                    if compared:
                        list_change("added", cur[2])
                        note(change_line(self.spec, "added", cur[2], []))
                elif kind == "left":
                    assert old is not None
                    outcome.left += 1
                    list_change("left", old[2])
                    note(change_line(self.spec, "left", old[2], []))
                elif kind == "changed":
                    assert old is not None and cur is not None
                    outcome.changed += 1
                    diffs = [
                        (labels[i], b, a)
                        for i, (b, a) in enumerate(zip(old[3], cur[3], strict=False))
                        if b != a
                    ]
                    for label, b, a in diffs:
                        list_change("changed", cur[2], label, b, a)
                    note(change_line(self.spec, "changed", cur[2], diffs))
                    for transition, at in tests:
                        if at < len(old[3]) and transition.test(old[3][at], cur[3][at]):
                            transitions[transition.key] = transitions.get(transition.key, 0) + 1
                else:
                    same += 1
            if line:
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
        outcome.transitions, outcome.unchanged = transitions, same
        return outcome


def _joined(
    before: Iterator[Fingerprint], after: Iterator[Fingerprint]
) -> Iterator[tuple[str, Fingerprint | None, Fingerprint | None]]:
    """A merge join of two key-sorted streams: (added | left | changed | same, old, new)."""
    old = next(before, None)
    cur = next(after, None)
    while old is not None or cur is not None:
        if cur is None or (old is not None and old[0] < cur[0]):
            yield "left", old, None
            old = next(before, None)
        elif old is None or cur[0] < old[0]:
            yield "added", None, cur
            cur = next(after, None)
        else:
            yield ("same" if old[1] == cur[1] else "changed"), old, cur
            old, cur = next(before, None), next(after, None)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    # A cell a spreadsheet would run as a formula is quoted as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while data := await asyncio.to_thread(fh.read, UPLOAD_CHUNK):
            yield data
