"""Ordering rows by names in the worker, in bounded memory.

`name_key` is the order the server gave under the collation `{"locale": "en", "strength": 2}`
(ICU, case-insensitive, accent-sensitive), written in Python because PyICU ships no wheels on
PyPI (it builds against the system's ICU):

- primary: the casefolded text (`ß` → `ss`) decomposed (NFKD: `ĳ` → `ij`) with the combining
  marks dropped, so `é`, `E` and `e` compare equal at first (`ø`, `ł`, `đ`, `ħ` as their base
  letter); ASCII punctuation, spaces and typographic apostrophes are mapped to the order ICU's
  root collation gives them (whitespace, then `_ - , ; : ! ? . ' ‘ ’ " ( ) …`, all before
  digits and letters);
- secondary: the same text with its marks kept, which breaks primary ties the way ICU's
  secondary (accent) level does for English: unaccented first, then by the first accent's
  position (`cote` < `coté` < `côte`);
- case is ignored (strength 2): `müller` and `Müller` tie, and the next sort field or the
  document's `_id` decides, as on the server.

Letters ICU treats as their own (`æ`, `œ`, `þ`) and non-Latin scripts sort by code point here
(after `z`). The local MongoDB-compatible test server approximates the collation more coarsely
(ASCII order for punctuation, `ß` and `’` by code point); real MongoDB uses ICU, which this key
follows.

`sorted_rows` sorts (key, row) pairs: runs of `RUN_ROWS` are sorted in memory and spilled to a
temporary directory (the worker's scratch, see app/runtime/scratch.py) in pickled chunks;
`heapq.merge` streams them back (merged in levels of at most `FAN_IN` runs, so the memory of the
merge does not grow with the row count). The directory goes on every outcome.
"""

from __future__ import annotations

import heapq
import pickle
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterator
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from app.reports.reading.query import Row

# ICU root collation order of the ASCII characters that are neither digits nor letters.
_ICU_PUNCTUATION = "\t\n\r _-,;:!?.'\u2018\u2019\"()[]{}@*/\\&#%`^+<=>|~$"
_PUNCTUATION = str.maketrans({c: chr(1 + i) for i, c in enumerate(_ICU_PUNCTUATION)})
# Letters with a stroke have no Unicode decomposition; the root collation sorts them as their
# base letter with an accent (a secondary difference).
_STROKES = str.maketrans({"ø": "o\u0338", "ł": "l\u0337", "đ": "d\u0335", "ħ": "h\u0335"})

NameKey = tuple[int, str, str]
_NONE_KEY: NameKey = (0, "", "")  # null and missing sort first, as on the server

RUN_ROWS = 6000  # rows sorted in memory at a time
CHUNK_ROWS = 25  # rows per pickled chunk of a run file (what the merge holds per run)
FAN_IN = 256  # runs merged at once (1,000,000 rows: one merge of 167 runs)


@lru_cache(maxsize=1 << 14)
def _text_key(value: str) -> NameKey:
    if value.isascii():
        folded = value.lower().translate(_PUNCTUATION)
        return (1, folded, folded)
    decomposed = unicodedata.normalize("NFKD", value.casefold().translate(_STROKES))
    decomposed = decomposed.translate(_PUNCTUATION)
    primary = "".join(c for c in decomposed if not unicodedata.combining(c))
    return (1, primary, decomposed)


def name_key(value: Any) -> NameKey:
    """The sort key of a name field (see the module docstring); None sorts first."""
    if value is None:
        return _NONE_KEY
    return _text_key(value if isinstance(value, str) else str(value))


# -- external merge sort ----------------------------------------------------------------------

_by_key = itemgetter(0)


def _write_run(directory: Path, number: int, pairs: Iterator[tuple[Any, Row]]) -> Path:
    path = directory / f"run-{number:06d}.pickle"
    with path.open("wb") as fh:
        while chunk := list(islice(pairs, CHUNK_ROWS)):
            pickle.dump(chunk, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _read_run(path: Path) -> Iterator[tuple[Any, Row]]:
    fh: BinaryIO
    with path.open("rb") as fh:
        while True:
            try:
                chunk = pickle.load(fh)
            except EOFError:
                return
            yield from chunk


def _merged(paths: list[Path]) -> Iterator[tuple[Any, Row]]:
    return heapq.merge(*(_read_run(p) for p in paths), key=_by_key)


async def sorted_rows(
    pairs: AsyncIterable[list[tuple[Any, Row]]],
    batch_size: int,
    *,
    run_rows: int = RUN_ROWS,
    on_sorted: Callable[[int], None] | None = None,
) -> AsyncGenerator[list[Row]]:
    """The rows of `pairs` ((key, row) batches) in key order, in batches of `batch_size`. At
    most `run_rows` pairs are held while reading, plus `CHUNK_ROWS` per merged run after.
    `on_sorted` hears how many rows there are once all are read, before the first comes."""
    run: list[tuple[Any, Row]] = []
    directory: Path | None = None
    runs: list[Path] = []
    total = 0
    try:
        async for batch in pairs:
            run.extend(batch)
            total += len(batch)
            if len(run) >= run_rows:
                if directory is None:
                    # In the worker's own scratch directory (tempfile.tempdir points there).
                    directory = Path(tempfile.mkdtemp(prefix="report-sort-"))
                run.sort(key=_by_key)
                runs.append(_write_run(directory, len(runs), iter(run)))
                run = []
        run.sort(key=_by_key)
        if directory is None:  # it all fitted in one run: no files
            ordered: Iterator[tuple[Any, Row]] = iter(run)
        else:
            if run:
                runs.append(_write_run(directory, len(runs), iter(run)))
            run = []
            number = len(runs)
            while len(runs) > FAN_IN:  # merge in levels: the merge's memory stays bounded
                group, runs = runs[:FAN_IN], runs[FAN_IN:]
                runs.append(_write_run(directory, number, _merged(group)))
                number += 1
                for path in group:
                    path.unlink()
            ordered = _merged(runs)
        if on_sorted is not None:
            on_sorted(total)
        while batch_rows := [row for _, row in islice(ordered, batch_size)]:
            yield batch_rows
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
