"""How rows are shown to people rather than to machines, decided once per file.

PDF and Excel print labels for codes ("In progress" for `in-progress`), leave out the columns
meant for machines (`Column.csv_only`) and show a tree's depth by indenting the first column
(the row's `level` cell). CSV keeps codes and every column, unless the job asked for labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.i18n import translate
from app.reports.rendering.base import Column, ColumnType

# Em spaces: not collapsed by HTML (the PDF) and as wide as a letter in a spreadsheet cell.
INDENT = "\u2003\u2003"


@dataclass(frozen=True)
class Presentation:
    """The columns a file shows and how a raw row (codes, every column) becomes one of its
    rows."""

    columns: list[Column]
    keep: tuple[int, ...] | None  # positions of the shown columns (None: all)
    relabel: tuple[tuple[int, Mapping[str, str]], ...]  # (position, code -> label)
    level_at: int | None  # the raw row's `level` cell, when the first column is indented

    @classmethod
    def of(
        cls,
        columns: Sequence[Column],
        labels: Mapping[str, Mapping[str, str]],
        *,
        for_people: bool,
        with_labels: bool | None = None,
    ) -> Presentation:
        """`labels`: code -> label per lookup category; `with_labels` defaults to
        `for_people`."""
        use_labels = for_people if with_labels is None else with_labels
        relabel = tuple(
            (i, labels[c.lookup])
            for i, c in enumerate(columns)
            if use_labels and c.lookup and c.lookup in labels
        )
        if not for_people:
            return cls(list(columns), None, relabel, None)
        keep = tuple(i for i, c in enumerate(columns) if not c.csv_only)
        keys = [c.key for c in columns]
        level_at = keys.index("level") if "level" in keys and columns[0].key != "level" else None
        return cls([columns[i] for i in keep], keep, relabel, level_at)

    @property
    def changes_rows(self) -> bool:
        return bool(self.relabel) or self.keep is not None

    def rows(self, batch: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        if not self.changes_rows:
            return [tuple(r) for r in batch]
        out: list[tuple[Any, ...]] = []
        for raw in batch:
            row = list(raw)
            for at, names in self.relabel:
                code = row[at]
                if isinstance(code, str):
                    row[at] = names.get(code, code)
            if self.level_at is not None and row[self.level_at] and row[0] is not None:
                row[0] = INDENT * int(row[self.level_at]) + str(row[0])
            out.append(tuple(row[i] for i in self.keep) if self.keep is not None else tuple(row))
        return out


def localised(columns: Sequence[Column], locale: str) -> list[Column]:
    """The columns with their labels and descriptions in `locale` (the keys stay: CSV readers
    and the metadata API name columns by key)."""
    return [
        replace(c, label=translate(locale, c.label), description=translate(locale, c.description))
        for c in columns
    ]


# Columns that say who or when need no definition; figures, flags and states do.
_SELF_EXPLAINING = frozenset({ColumnType.STRING, ColumnType.DATE, ColumnType.DATETIME})


def definitions(columns: Sequence[Column]) -> list[tuple[str, str]]:
    """(label, description) of the shown columns whose meaning a reader needs spelled out."""
    return [
        (c.label, c.description)
        for c in columns
        if c.description and (c.type not in _SELF_EXPLAINING or c.lookup)
    ]
