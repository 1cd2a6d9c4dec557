"""A large report's first page, found without its whole read (`reading/first_rows.py`).

A preview reads the whole report when it is small enough to fit its budget: its rows, row count,
summary, totals and charts are then the file's. When the report's index ranges hold more than
`WHOLE_READ_ROWS` documents (counted slice by slice for at most `PROBE_SECONDS`), a report in
the learner × course order previewed in that order (no `sort`) gets its page from the rows
before it instead, driven by the order's dimensions: the rows are the file's first rows, the
row count is the probe's (exact when it counted every range and the report filters nothing in
the worker, else an estimate), and the summary, totals and charts — which need every row — are
left out (`summaryIncluded: false`). Any other large preview is read whole within the budget,
or refused with its estimate, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.reports.reading.facts import decoding, estimate_facts
from app.reports.reading.first_rows import first_rows
from app.reports.reading.learner_course import LEARNER_COURSE
from app.reports.reading.preference import report_reads
from app.reports.reading.query import Row
from app.reports.types import AnyReportDefinition
from app.security import DataScope

WHOLE_READ_ROWS = 3000  # a preview of more documents than this finds its page on its own
PROBE_SECONDS = 0.15  # how long the documents are counted before deciding


@dataclass(frozen=True)
class FirstPage:
    rows: list[Row]  # the report's first rows, up to the end of the page asked for
    row_count: int
    exact: bool


async def first_page(
    definition: AnyReportDefinition,
    resolved: Mapping[str, Any],
    scope: DataScope,
    need: int,
    wait: float,
) -> FirstPage | None:
    """The first `need` rows of a large report in its own order, or None when the report is
    small enough to be read whole (or is not in the learner × course order, or the learner
    order it needs is not there within `wait` seconds: the whole read then decides)."""
    typed = await definition.with_subtrees(definition.typed(resolved))
    facts = (await definition.plan(typed, scope)).facts
    if facts is None or facts.order != LEARNER_COURSE.order:
        return None
    collection = decoding(report_reads(definition.source.get_pymongo_collection()), facts)
    probe = await estimate_facts(collection, facts, PROBE_SECONDS)
    if probe is not None and probe[0] <= WHOLE_READ_ROWS:
        return None
    count, counted = probe or (0, False)
    rows = await first_rows(collection, facts, need, wait=wait, expected=count)
    if rows is None:
        return None
    filtered = facts.keep is not None or facts.after_join is not None
    if probe is None:  # not one range counted in time: at least the rows found
        return FirstPage(rows, len(rows), exact=False)
    return FirstPage(rows, max(count, len(rows)), exact=counted and not filtered)


__all__ = ["PROBE_SECONDS", "WHOLE_READ_ROWS", "FirstPage", "first_page"]
