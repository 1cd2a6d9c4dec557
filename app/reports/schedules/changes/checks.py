"""A schedule's `changes` checked against its report type: only types that declare a row key
and compared fields (`types.changes.CHANGE_SPECS`) offer change reports; a 422 names the field
otherwise, with every other problem of the request."""

from __future__ import annotations

from collections.abc import Mapping

from app.errors import FieldError, Problems
from app.reports.schedules.changes.schemas import ChangesIn
from app.reports.schedules.models import ReportSchedule
from app.reports.types.changes import CHANGE_SPECS

FIELD = "body.changes"


def changes_fields(
    body: ChangesIn | None, sent: bool, report_type: str | None, problems: Problems
) -> dict[str, object]:
    """The schedule fields a `changes` in a create or update sets (nothing when not `sent`):
    the option (None removes it) and no baselines, so the next run starts afresh."""
    if not sent:
        return {}
    if body is None or report_type is None:
        return {"changes": None, "change_baselines": {}}
    if report_type not in CHANGE_SPECS:
        problems.add(
            FieldError(
                field=FIELD,
                message=f"{report_type} reports offer no change reports; those that do: "
                f"{', '.join(sorted(CHANGE_SPECS))}",
                type="changes-not-supported",
            )
        )
    return {"changes": body.config().model_dump(mode="json"), "change_baselines": {}}


# What a run compares: a change of any of them makes the stored baselines and alert values
# those of another request.
COMPARED_REQUEST = ("parameters", "template_version", "report_type")


def states_reset(schedule: ReportSchedule, changes: Mapping[str, object]) -> dict[str, object]:
    """No baselines and no alert states when an update changes the request a run compares
    (its parameters, template version or report type): the next run of every scope is a first
    run, not a comparison of rows of another shape or scope (its columns and format do not
    matter: fingerprints are taken of every column's raw value)."""
    if all(changes.get(k, getattr(schedule, k)) == getattr(schedule, k) for k in COMPARED_REQUEST):
        return {}
    return {"change_baselines": {}, "alert_states": {}}
