"""How rows are shown to people rather than to machines, decided once per file.

PDF and Excel print labels for codes ("In progress" for `in-progress`, a quiz's title for its
id), "Yes" / "No" for booleans, leave out the columns meant for machines (`Column.csv_only`),
apply the report type's own cell conversions for people (a period start clipped to the range)
and show a tree's depth by indenting the first column (the row's `level` cell), whose cell then
also names the row's ancestors (`TreeName`, for the PDF's "continued" line). CSV keeps codes,
`true` / `false` and every column, unless the job asked for labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app.i18n import N_, translate
from app.reports.rendering.base import Column, ColumnType, Figure

# Em spaces: not collapsed by HTML (the PDF) and as wide as a letter in a spreadsheet cell.
INDENT = "\u2003\u2003"
YES, NO = N_("Yes"), N_("No")
# Between the names of a tree row's ancestors.
PATH_SEPARATOR = " › "

CellConversion = Callable[[Any], Any]
# A tree's machine columns, which Excel shows too (to filter by level, sort back into the tree).
TREE_COLUMN_KEYS = frozenset({"level", "parentCode"})


class TreeName(str):
    """A tree row's first cell for people: the name indented by depth, and `path`, the names of
    the row's ancestors (outermost first; empty for a top-level row)."""

    path: tuple[str, ...]

    def __new__(cls, text: str, path: tuple[str, ...]) -> TreeName:
        value = super().__new__(cls, text)
        value.path = path
        return value

    def __reduce__(self) -> tuple[type[TreeName], tuple[str, tuple[str, ...]]]:
        return (TreeName, (str(self), self.path))


@dataclass
class Presentation:
    """The columns a file shows and how a raw row (codes, every column) becomes one of its
    rows."""

    columns: list[Column]
    keep: tuple[int, ...] | None  # positions of the shown columns (None: all)
    relabel: tuple[tuple[int, Mapping[str, str]], ...]  # (position, code -> label)
    level_at: int | None  # the raw row's `level` cell, when the first column is indented
    # (position, conversion) of the cells converted for people: labelled codes, booleans, the
    # report type's own conversions.
    convert: tuple[tuple[int, CellConversion], ...] = ()
    _ancestors: list[str] = field(default_factory=list)  # the tree's path to the last row

    @classmethod
    def of(
        cls,
        columns: Sequence[Column],
        labels: Mapping[str, Mapping[str, str]],
        *,
        for_people: bool,
        with_labels: bool | None = None,
        cells: Mapping[str, CellConversion] | None = None,
        locale: str = "en",
        kept: frozenset[str] = frozenset(),
    ) -> Presentation:
        """`labels`: code -> label per lookup category (in `locale`); `with_labels` defaults to
        `for_people`; `cells`: the report type's conversions for people, by column key;
        `locale`: the language of "Yes" / "No"; `kept`: machine-only columns this file shows
        all the same (Excel's tree columns, `TREE_COLUMN_KEYS`)."""
        use_labels = for_people if with_labels is None else with_labels
        relabel = tuple(
            (i, labels[c.lookup])
            for i, c in enumerate(columns)
            if use_labels and c.lookup and c.lookup in labels
        )
        convert: list[tuple[int, CellConversion]] = [
            (i, _own_label) for i, c in enumerate(columns) if use_labels and c.labelled
        ]
        if not for_people:
            return cls(list(columns), None, relabel, None, tuple(convert))
        own = cells or {}
        for i, c in enumerate(columns):
            if c.key in own:
                convert.append((i, own[c.key]))
            if c.type is ColumnType.BOOLEAN:
                convert.append((i, yes_no_in(locale)))
        keep = tuple(i for i, c in enumerate(columns) if not c.csv_only or c.key in kept)
        keys = [c.key for c in columns]
        level_at = keys.index("level") if "level" in keys and columns[0].key != "level" else None
        return cls([columns[i] for i in keep], keep, relabel, level_at, tuple(convert))

    @property
    def changes_rows(self) -> bool:
        return bool(self.relabel) or bool(self.convert) or self.keep is not None

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
            for at, conversion in self.convert:
                row[at] = conversion(row[at])
            if self.level_at is not None and row[0] is not None:
                row[0] = self._tree_name(str(row[0]), row[self.level_at])
            out.append(tuple(row[i] for i in self.keep) if self.keep is not None else tuple(row))
        return out

    def _tree_name(self, name: str, level: Any) -> TreeName:
        """The name indented by `level`, with the names of the rows above it in the tree (rows
        come in tree order: a parent, then its subtree)."""
        depth = int(level) if isinstance(level, int) and level > 0 else 0
        del self._ancestors[depth:]
        path = tuple(self._ancestors)
        self._ancestors.append(name)
        return TreeName(INDENT * depth + name, path)


def yes_no(value: Any) -> Any:
    """A boolean as people read it (in English); anything else (an empty cell) as it is."""
    if isinstance(value, bool):
        return YES if value else NO
    return value


def yes_no_in(locale: str) -> CellConversion:
    """`yes_no` in `locale`."""
    yes, no = translate(locale, YES), translate(locale, NO)
    if (yes, no) == (YES, NO):
        return yes_no

    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            return yes if value else no
        return value

    return convert


def _own_label(value: Any) -> Any:
    """A code that carries its label (`LabelledCode`) as that label."""
    return getattr(value, "label", value)


def localised(columns: Sequence[Column], locale: str) -> list[Column]:
    """The columns with their labels and descriptions in `locale` (the keys stay: CSV readers
    and the metadata API name columns by key)."""
    return [
        replace(c, label=translate(locale, c.label), description=translate(locale, c.description))
        for c in columns
    ]


# Columns that say who or when need no definition; figures, flags and states do.
_SELF_EXPLAINING = frozenset({ColumnType.STRING, ColumnType.DATE, ColumnType.DATETIME})


def defines(column: Column) -> bool:
    """Whether a column's description is stated under "Definitions": figures, flags, coded
    states, and columns marked `explained`."""
    return bool(column.description) and (
        column.type not in _SELF_EXPLAINING or bool(column.lookup) or column.explained
    )


def definitions(columns: Sequence[Column], figures: Sequence[Figure] = ()) -> list[tuple[str, str]]:
    """(label, definition) of the shown columns whose meaning a reader needs spelled out, then
    of the summary figures; a label a column and a figure share (the same measure) once."""
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    pairs = [(c.label, c.description) for c in columns if defines(c)]
    pairs += [(f.label, f.definition) for f in figures if f.definition]
    for pair in pairs:
        if pair not in seen:
            seen.add(pair)
            out.append(pair)
    return out
