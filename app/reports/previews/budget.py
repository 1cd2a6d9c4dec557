"""A preview's time budget, and the refusal when a report does not fit in it.

Everything a preview reads runs inside `Budget.spending()`: `pymongo.timeout` gives every
database call what is left of the budget (as `maxTimeMS` on the server and as the socket
timeout of the call), and `asyncio.timeout` stops the worker-side joins and order at the same
moment. A read that does not finish in time is stopped where it is — never read on to the end —
and the caller gets a 422 `preview-too-large` with an estimate of the rows and the filters
that would narrow them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

from app.errors import AppError
from app.reports.types import AnyReportDefinition
from app.security import DataScope


class PreviewTooLarge(AppError):
    status, code, title = 422, "preview-too-large", "Preview too large"


# A read is given up before its budget is spent once, past 40 % of the budget, the time
# it has taken for the share of its ranges done says it needs more than this many budgets.
GIVE_UP_AT = 2.0
GIVE_UP_AFTER = 0.4  # of the budget: the first slices say little about the rest


@dataclass
class ReadWatch:
    """What a fact read reports while it goes (`READ_PROGRESS`): the share of its ranges
    read, the documents it kept so far and, once sorted, the exact row count. With a
    `budget`, a read whose pace so far cannot finish within it is stopped there and then
    (a `TimeoutError` out of `reading`), instead of when the budget is spent."""

    budget: Budget | None = None
    share: float = 0.0
    docs: int = 0
    rows: int | None = None

    def reading(self, share: float, *, rows_follow: bool) -> None:
        self.share = max(self.share, share)
        budget = self.budget
        if budget is None or self.share <= 0 or self.share >= 1:
            return
        spent, allowed = budget.elapsed(), budget.milliseconds / 1000
        if spent > GIVE_UP_AFTER * allowed and spent / self.share > GIVE_UP_AT * allowed:
            raise TimeoutError(f"{self.share:.0%} of the read took {spent:.2f} s")

    def fetched(self, docs: int) -> None:
        self.docs += docs

    def counted(self, rows: int) -> None:
        self.rows = rows

    def estimate(self) -> int | None:
        """The rows of the whole read: exact once sorted, else the documents kept so far over
        the share of the ranges read (the density seen so far held for the rest); None while
        nothing is known."""
        if self.rows is not None:
            return self.rows
        if self.share <= 0 or not self.docs:
            return None
        return max(self.docs, round(self.docs / self.share))


class Budget:
    def __init__(self, milliseconds: int) -> None:
        self.milliseconds = milliseconds
        self.started = time.monotonic()

    def left(self) -> float:
        return self.milliseconds / 1000 - (time.monotonic() - self.started)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def elapsed_ms(self) -> int:
        return round(self.elapsed() * 1000)

    @asynccontextmanager
    async def spending(self) -> AsyncIterator[None]:
        """Runs the block within what is left; a `TimeoutError` past it (see `ran_out`)."""
        left = self.left()
        if left <= 0:
            raise TimeoutError
        with pymongo.timeout(left):
            async with asyncio.timeout(left):
                yield


def ran_out(exc: BaseException) -> bool:
    """Whether `exc` is the budget running out (a timeout of a database call included), not
    the database being away (that stays a 503)."""
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, ServerSelectionTimeoutError):
        return False
    return isinstance(exc, PyMongoError) and exc.timeout


def narrowing(definition: AnyReportDefinition, parameters: Mapping[str, Any]) -> list[str]:
    """The parameters that would make the report smaller: a shorter `dateRange` (or `asOfDate`
    window), then every list filter (departments, courses, statuses, …) and every "… only"
    switch the request did not set yet, as `parameters.<name>`."""
    fields = definition.parameters_model.model_fields
    names: list[str] = []
    for name, info in fields.items():
        alias = info.alias or name
        if name == "date_range":
            names.insert(0, alias)
            continue
        annotation = str(info.annotation)
        is_list = "list" in annotation.lower() and info.default is None
        is_only = name.endswith("_only") and info.default is False
        if (is_list or is_only) and not parameters.get(alias):
            names.append(alias)
    return [f"parameters.{n}" for n in names]


# Time an estimate of a refused preview's size may take after its budget ran out: counting
# slice by slice, as far as it gets (`ReportDefinition.estimate`).
ESTIMATE_SECONDS = 0.3


async def too_large(
    definition: AnyReportDefinition,
    resolved: Mapping[str, Any],
    scope: DataScope,
    requested: Mapping[str, Any],
    watch: ReadWatch,
    budget: Budget,
) -> PreviewTooLarge:
    """The refusal of a read that ran out of `budget`, with the best estimate of its size: the
    exact row count when the read got as far as sorting its rows, or the read's index ranges
    counted slice by slice for `ESTIMATE_SECONDS` when that counted all of them; else the larger
    of two extrapolations over the share done: that count's, and the documents the read kept
    so far."""
    estimate, exact = watch.estimate(), watch.rows is not None
    if not exact:
        try:
            counted = await definition.estimate(resolved, scope, ESTIMATE_SECONDS)
        except Exception as exc:
            if not ran_out(exc):
                raise
            counted = None
        if counted is not None and (counted[1] or estimate is None or counted[0] > estimate):
            estimate, exact = counted
    narrow_by = narrowing(definition, requested)
    about = f"about {estimate:,} rows" if estimate is not None else "more rows than it could read"
    return PreviewTooLarge(
        f"This {definition.name} report has {about}: a preview reads the whole report within "
        f"{budget.milliseconds:,} ms and this one does not fit. Narrow it "
        f"({', '.join(n.removeprefix('parameters.') for n in narrow_by)}) or run it as a job "
        "(POST /api/v1/reports/jobs, format json) and page through its rows.",
        extra={
            "estimatedRows": estimate,
            "estimateExact": exact,
            "rowsRead": watch.docs,
            "budgetMs": budget.milliseconds,
            "narrowBy": narrow_by,
        },
    )


__all__ = ["Budget", "PreviewTooLarge", "ReadWatch", "narrowing", "ran_out", "too_large"]
