"""A schedule's `alert` checked against its report type: every condition names one of the
type's alertable metrics and has exactly one form (threshold or change), and compares with the
previous period only when the type has a date range; all problems in one 422, each naming its
field (`body.alert.conditions.1.metric`)."""

from __future__ import annotations

from app.errors import FieldError, Problems
from app.reports.schedules.alerts.models import (
    AlertCondition,
    AlertConditionIn,
    AlertConfig,
    AlertIn,
    Versus,
)
from app.reports.schedules.alerts.periods import has_date_range
from app.reports.types import get_report_type
from app.reports.types.alertable import alertable_metrics

FIELD = "body.alert"


def _condition(
    index: int,
    given: AlertConditionIn,
    known: set[str],
    report_type: str,
    problems: Problems,
    ranged: bool,
) -> AlertCondition:
    at = f"{FIELD}.conditions.{index}"
    if given.metric not in known:
        problems.add(
            FieldError(
                field=f"{at}.metric",
                message=f"{given.metric!r} is not an alertable metric of {report_type} reports; "
                f"one of: {', '.join(sorted(known))}",
                type="unknown-metric",
            )
        )
    threshold = given.op is not None or given.value is not None
    change = given.change is not None or given.by is not None or given.versus is not None
    if threshold and change:
        problems.add(
            FieldError(
                field=at,
                message="either a threshold (op, value) or a change (change, by), not both",
                type="condition-form",
            )
        )
    elif not threshold and not change:
        problems.add(
            FieldError(
                field=f"{at}.op",
                message="required: a threshold (op, value) or a change (change, by)",
                type="missing",
            )
        )
    elif threshold:
        for name in ("op", "value"):
            if getattr(given, name) is None:
                problems.add(
                    FieldError(
                        field=f"{at}.{name}", message="required with a threshold", type="missing"
                    )
                )
    else:
        for name in ("change", "by"):
            if getattr(given, name) is None:
                problems.add(
                    FieldError(
                        field=f"{at}.{name}", message="required with a change", type="missing"
                    )
                )
    if change and given.versus == Versus.PREVIOUS_PERIOD and not ranged:
        problems.add(
            FieldError(
                field=f"{at}.versus",
                message=f"{report_type} reports have no date range, so no previous period to "
                "compare with; use previous-run",
                type="no-date-range",
            )
        )
    if given.relative and not change:
        problems.add(
            FieldError(field=f"{at}.relative", message="only with a change", type="condition-form")
        )
    return AlertCondition(
        metric=given.metric,
        op=given.op,
        value=given.value,
        change=given.change,
        by=given.by,
        relative=given.relative,
        versus=(given.versus or Versus.PREVIOUS_RUN) if change else None,
    )


def alert_config(body: AlertIn, report_type: str, problems: Problems) -> AlertConfig:
    """The stored form of `body`, its problems added to `problems`."""
    known = {m.key for m in alertable_metrics(get_report_type(report_type))}
    ranged = has_date_range(report_type)
    conditions = [
        _condition(i, c, known, report_type, problems, ranged)
        for i, c in enumerate(body.conditions)
    ]
    return AlertConfig(
        conditions=conditions,
        match=body.match,
        recovery_margin=body.recovery_margin,
        notify_recovery=body.notify_recovery,
    )


def alert_changes(
    body: AlertIn | None, sent: bool, report_type: str | None, problems: Problems
) -> dict[str, object]:
    """The schedule fields an `alert` in a create or update sets (nothing when not `sent`):
    the checked alert (None removes it) and every scope's state back to `not-met`, so a new
    or changed alert fires at its first run that meets it."""
    if not sent:
        return {}
    if body is None or report_type is None:
        return {"alert": None, "alert_states": {}}
    config = alert_config(body, report_type, problems)
    return {"alert": config.model_dump(mode="json"), "alert_states": {}}
