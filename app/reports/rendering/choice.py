"""The columns a job chose, applied between the read and the sinks.

The read, the summary and the presentation's bookkeeping (a tree's depth) see whole rows; the
sinks see only the chosen columns, in the chosen order. `ColumnChoice.narrow` turns a
`Presentation` (whole rows in, shown rows out) into one that also projects: its rows hold the
chosen cells only, and no cell of a column left out is converted (labels, Yes / No), so the
projection costs no extra pass over the rows. Renderers just receive the chosen columns and rows:
a PDF picks its orientation and widths from them, Excel and CSV write their header from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.reports.rendering.base import Column
from app.reports.rendering.present import Presentation


@dataclass(frozen=True)
class ColumnChoice:
    """`keys`: the chosen columns in output order (already checked against the run's)."""

    keys: tuple[str, ...]

    def is_whole(self, columns: Sequence[Column]) -> bool:
        """Whether the choice is every column in the type's order (nothing to project)."""
        return self.keys == tuple(c.key for c in columns)

    def columns(self, columns: Sequence[Column]) -> list[Column]:
        """The chosen columns of `columns`, in the chosen order (keys not among them are left
        out: a machine-only column in a file for people)."""
        by_key = {c.key: c for c in columns}
        return [by_key[k] for k in self.keys if k in by_key]

    def positions(self, columns: Sequence[Column]) -> tuple[int, ...]:
        """Where each chosen column's cell is in a row of `columns`."""
        at = {c.key: i for i, c in enumerate(columns)}
        return tuple(at[k] for k in self.keys if k in at)

    def rows(
        self, columns: Sequence[Column], batch: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, ...]]:
        """Rows of `columns` cut down to the chosen cells, in the chosen order."""
        keep = self.positions(columns)
        return [tuple(row[i] for i in keep) for row in batch]

    def narrow(self, raw: Sequence[Column], presentation: Presentation) -> Presentation:
        """`presentation` (made for whole rows of `raw`) showing only the chosen columns: its
        rows come out projected, and cells of columns left out are not converted."""
        if self.is_whole(raw):
            return presentation
        shown = {c.key for c in presentation.columns}
        keys = tuple(k for k in self.keys if k in shown)
        at = {c.key: i for i, c in enumerate(raw)}
        keep = tuple(at[k] for k in keys)
        by_key = {c.key: c for c in presentation.columns}
        kept = set(keep)
        return replace(
            presentation,
            columns=[by_key[k] for k in keys],
            keep=keep,
            relabel=tuple((i, names) for i, names in presentation.relabel if i in kept),
            convert=tuple((i, f) for i, f in presentation.convert if i in kept),
        )
