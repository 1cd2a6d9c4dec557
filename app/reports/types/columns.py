"""How report types declare their columns and the figures their summaries show: one
definition per figure (its `description`), written where the figure is computed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from app.i18n import N_
from app.reports.rendering.base import Column, ColumnType

ColumnTypeName = Literal["string", "integer", "number", "percent", "boolean", "date", "datetime"]


def column(
    key: str,
    label: str,
    type: ColumnTypeName,
    description: str = "",
    *,
    csv_only: bool = False,
    lookup: str | None = None,
    explained: bool = False,
    labelled: bool = False,
    unit: str | None = None,
) -> Column:
    """A report column; the same `Column` the renderers take (percent = 0–100, not a
    fraction). `description` is the column's one definition (metadata, Definitions, e-mail);
    `lookup`: the category whose labels the files print for the column's codes; `explained`:
    the description is stated under Definitions although the type usually explains itself;
    `labelled`: the cells carry their own label (`LabelledCode`); `unit`: what a number
    counts in ("min", "h", "d"; a percent column's is "%")."""
    return Column(
        key,
        label,
        ColumnType(type),
        csv_only=csv_only,
        description=description,
        lookup=lookup,
        explained=explained,
        labelled=labelled,
        unit=unit,
    )


def measure(key: str, label: str, type: ColumnTypeName, description: str) -> Column:
    """A figure a summary shows that is not a column of the rows (a count of departments, the
    compliance rate): its definition, written next to the summary that computes it."""
    return column(key, label, type, description)


def column_index(columns: Sequence[Column], *keys: str) -> tuple[int, ...]:
    """The positions of the columns `keys` in a row, for summarizers that read values by
    column key (a KeyError names a key that is not a column)."""
    positions = {c.key: i for i, c in enumerate(columns)}
    return tuple(positions[k] for k in keys)


# Who and what a per-record row is about: the first columns of several report types, whose
# cells come from `reading.learner_course` (the joins, cells and order they share).
LEARNER_COURSE_COLUMNS: list[Column] = [
    column("learnerName", N_("Learner"), "string", N_("The learner's name")),
    column("learnerEmail", N_("Email"), "string", N_("The learner's e-mail address")),
    column(
        "departmentName", N_("Department"), "string", N_("The department the record belongs to")
    ),
    column("courseCode", N_("Course code"), "string", N_("The course's code")),
    column("courseTitle", N_("Course"), "string", N_("The course's title")),
]
# An enrollment's status (learner-progress, compliance-status): what each status means.
STATUS_COLUMN = column(
    "status",
    N_("Status"),
    "string",
    N_(
        "Where the enrollment stands: Enrolled (not started yet), In progress (started, not "
        "finished), Completed (finished and passed), Failed (finished without passing), Withdrawn "
        "(left the course before finishing)"
    ),
    lookup="enrollment-status",
)


def column_document(col: Column) -> dict[str, Any]:
    return {
        "key": col.key,
        "label": col.label,
        "type": col.type.value,
        "description": col.description,
        "lookup": col.lookup,
    }
