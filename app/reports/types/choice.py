"""A request's choice of columns, checked against the columns its run has.

`columns: [key, ...]` names the columns a file shows, in the order it shows them; omitted, a
run has every column of its shape in the type's order (exactly the file it made before the
choice existed). The choice is checked against the run's own columns (assessment-results grouped
by course has other columns than per submission), and resolved once, when the job is created:
the group key columns a grouping type needs (course-completion's course, department-summary's
department, learning-activity's period and event type, assessment-results' course when grouped)
are put first when left out. The job stores the resolved list, so a retry or a re-run makes the
same file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from app.errors import FieldError, ValidationFailed
from app.reports.types.base import AnyReportDefinition
from app.reports.types.parameters import ReportParameters

_MODE_NOW = datetime(2026, 1, 1, tzinfo=UTC)  # the shape does not depend on `now`


def run_keys(definition: AnyReportDefinition, resolved: Mapping[str, Any]) -> list[str]:
    """The keys of a run's columns, in the type's order (the default choice)."""
    return [c.key for c in definition.columns_for(resolved)]


def group_keys(definition: AnyReportDefinition, resolved: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns every choice of this run keeps (put first when left out)."""
    return definition.run_group_columns(definition.typed(resolved))


def mode_group_keys(
    definition: AnyReportDefinition, parameters: Mapping[str, Any]
) -> tuple[str, ...]:
    """`group_keys` of the shape `parameters` select (the metadata API's modes)."""
    resolved = definition.resolve_parameters(definition.parse(parameters), _MODE_NOW)
    return definition.run_group_columns(resolved)


def all_keys(definition: AnyReportDefinition) -> list[str]:
    """Every column key any shape of the type has (what a choice is checked against while the
    parameters, and so the shape, are not known to be valid)."""
    keys: dict[str, None] = {}
    for mode in definition.modes():
        keys.update((c.key, None) for c in mode.columns)
    return list(keys)


def column_problems(
    asked: Sequence[str], known: Sequence[str], report_type: str, *, field: str = "columns"
) -> list[FieldError]:
    """Each unknown or repeated key of a choice (`columns[2]`), or an empty choice."""
    if not asked:
        return [
            FieldError(
                field=field,
                message="choose at least one column, or leave `columns` out for all of them",
                type="too-short",
                allowed=list(known),
            )
        ]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for at, key in enumerate(asked):
        if key not in known:
            errors.append(
                FieldError(
                    field=f"{field}[{at}]",
                    message=f"{key!r} is not a column of {report_type} reports",
                    type="column-unknown",
                    allowed=list(known),
                )
            )
        elif key in seen:
            errors.append(
                FieldError(
                    field=f"{field}[{at}]",
                    message=f"{key!r} is chosen twice",
                    type="column-repeated",
                )
            )
        seen.add(key)
    return errors


def choose_columns(
    definition: AnyReportDefinition,
    resolved: Mapping[str, Any],
    asked: Sequence[str] | None,
    *,
    field: str = "columns",
) -> list[str]:
    """The resolved choice of a run: every column when `asked` is None, else `asked` with the
    group key columns it leaves out put first. A 422 names each unknown or repeated key."""
    known = run_keys(definition, resolved)
    if asked is None:
        return known
    errors = column_problems(asked, known, definition.key, field=field)
    if errors:
        raise ValidationFailed.of(errors)
    kept = [k for k in group_keys(definition, resolved) if k not in asked]
    return [*kept, *asked]


def stored_choice(
    definition: AnyReportDefinition, resolved: Mapping[str, Any], stored: Sequence[str] | None
) -> list[str]:
    """A stored job's columns: its resolved choice, or every column (a job stored before the
    choice existed); keys the run does not have (any more) are left out."""
    known = run_keys(definition, resolved)
    if stored is None:
        return known
    chosen = [k for k in stored if k in known]
    return chosen or known


def check_choice(
    definition: AnyReportDefinition,
    params: ReportParameters | None,
    asked: Sequence[str] | None,
    now: datetime,
    *,
    field: str = "body.columns",
) -> None:
    """A 422 naming each problem of a request's choice: checked against the columns of the
    shape its parameters select, or against every column of the type while they are invalid."""
    if asked is None:
        return
    if params is None:
        known = all_keys(definition)
    else:
        known = [c.key for c in definition.run_columns(definition.resolve_parameters(params, now))]
    errors = column_problems(asked, known, definition.key, field=field)
    if errors:
        raise ValidationFailed.of(errors)
