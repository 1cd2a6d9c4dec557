"""Codes the service itself depends on: they may be relabelled, never switched off.

* every `report-status` code: the job state machine writes them (queued → running → completed /
  failed / cancelled, expired by retention); switching one off would not stop a job reaching it.
* `date-range-preset` `custom`: the only way to give explicit dates, stored by templates and
  schedules; and `last-30-days`, the default range of every report type.

Every other code is the table's to decide: switched off, it is refused for new requests in every
process within `LOOKUP_REFRESH_SECONDS` (stored data keeps reading)."""

from __future__ import annotations

STRUCTURAL: dict[str, frozenset[str] | None] = {
    "report-status": None,  # None: the whole category
    "date-range-preset": frozenset({"custom", "last-30-days"}),
}


def is_structural(category: str, code: str) -> bool:
    if category not in STRUCTURAL:
        return False
    codes = STRUCTURAL[category]
    return codes is None or code in codes
