"""How a report's read tells the job running it how far it has got.

A type's `fetch` yields batches of rows; a report ordered by names in the worker yields none
until its whole read is done and sorted, so the rows alone would leave a large job's progress
still for most of its run. The job sets `READ_PROGRESS` around its fetch, and a fact read
reports through it: the share of its date ranges read so far, whether the rows wait for the
whole read, the documents read so far, and, once sorted, how many rows there are (the exact
total, without a count)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class ReadProgress(Protocol):
    def reading(self, share: float, *, rows_follow: bool) -> None:
        """`share` (0–1) of the read is done; `rows_follow`: no row comes before all of it."""

    def counted(self, rows: int) -> None:
        """The read is done and holds `rows` rows (they come next)."""

    def fetched(self, docs: int) -> None:
        """`docs` more documents were read and kept by the read's own filter (a preview
        estimates the whole read's size from them and the share done)."""


READ_PROGRESS: ContextVar[ReadProgress | None] = ContextVar("read_progress", default=None)
