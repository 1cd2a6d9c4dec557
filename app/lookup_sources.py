"""The parts of the service that supply a lookup category's codes.

The report-type codes come from the report-type registry and the report-format codes from the
format registry; both sit above the lookups package (they validate lookup codes), so the
lookups package cannot import them. The entry points (`app.main`, `worker.main`, the scripts
and the tests) hand them to the catalogue with `provide_lookup_sources()` before anything reads
or seeds the codes."""

from __future__ import annotations

from app.lookups import catalog
from app.reports.formats import format_lookup_values
from app.reports.types import REPORT_TYPES

LOOKUP_SOURCES: dict[str, catalog.ValuesSource] = {
    "report-type": REPORT_TYPES.lookup_values,
    "report-format": format_lookup_values,
}


def provide_lookup_sources() -> None:
    """Makes each supplier the source of its category's codes (idempotent)."""
    for category, source in LOOKUP_SOURCES.items():
        catalog.provide(category, source)
