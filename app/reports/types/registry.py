"""The registry of report types: the one list every part of the service reads them from (the
API, the worker, the metadata and the `report-type` lookup codes)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from app.lookups import catalog
from app.lookups.catalog import LookupSeed
from app.reports.types.base import AnyReportDefinition


class ReportTypeRegistry(Mapping[str, AnyReportDefinition]):
    """Report types by key, in registration order (the order of the `report-type` codes)."""

    def __init__(self) -> None:
        self._definitions: dict[str, AnyReportDefinition] = {}

    def register(self, definition: AnyReportDefinition) -> AnyReportDefinition:
        if definition.key in self._definitions:
            raise ValueError(f"the report type {definition.key!r} is registered already")
        self._definitions[definition.key] = definition
        catalog.changed()
        return definition

    def unregister(self, key: str) -> None:
        del self._definitions[key]
        catalog.changed()

    def lookup_values(self) -> list[LookupSeed]:
        """The `report-type` lookup codes: key, name as label, description; sorted as
        registered."""
        return [(d.key, d.name, d.description, {}) for d in self._definitions.values()]

    def __getitem__(self, key: str) -> AnyReportDefinition:
        return self._definitions[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._definitions)

    def __len__(self) -> int:
        return len(self._definitions)
