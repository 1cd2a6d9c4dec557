"""Evaluating an alert on a run's metrics (pure): each condition met or not, recovered or not
(with the recovery margin), and the transition from the scope's previous state.

| before | conditions | state | sent |
|---|---|---|---|
| not firing | met | fired | the run |
| not firing | not met | not-met | nothing |
| firing | recovered | recovered | "back to normal" when `notifyRecovery` |
| firing | not recovered | still-firing | nothing |

A condition is *recovered* when it is false past the margin: `x < v` at x ≥ v + margin,
`x <= v` at x > v + margin, `x > v` at x ≤ v − margin, `x >= v` at x < v − margin, a change of
at least `by` when the change is below by − margin. With match `all` the alert recovers when
any condition recovered; with `any`, when every one did. A metric without a value (a rate
with nothing to count) is neither met nor recovered: it never starts or ends an alert.

A change compares with the scope's previous evaluated run (`versus: previous-run`) or with the
same figure over the period before the run's date range (`previous-period`, measured by the
caller: `periods.py`).
"""

from __future__ import annotations

from collections.abc import Mapping

from app.i18n import DEFAULT_LOCALE, LOCALES, N_, human_formats, translate
from app.reports.jobs.evaluation import AlertOutcome, AlertState, ConditionResult
from app.reports.schedules.alerts.models import (
    AlertCondition,
    AlertConfig,
    Change,
    Match,
    Op,
    ScopeAlertState,
    Versus,
)
from app.reports.types.alertable import Metric

Values = Mapping[str, float | None]


def _threshold(condition: AlertCondition, x: float, margin: float) -> tuple[bool, bool]:
    v = condition.value if condition.value is not None else 0.0
    match condition.op:
        case Op.LT:
            return x < v, x >= v + margin
        case Op.LE:
            return x <= v, x > v + margin
        case Op.GT:
            return x > v, x <= v - margin
        case _:
            return x >= v, x < v - margin


def _change(
    condition: AlertCondition, x: float, previous: float | None, margin: float
) -> tuple[bool, bool, float | None]:
    if previous is None:
        return False, False, None
    amount = previous - x if condition.change == Change.DROP else x - previous
    if condition.relative:
        if previous == 0:
            return False, False, None
        amount = amount / abs(previous) * 100
    by = condition.by or 0.0
    return amount >= by, amount < by - margin, amount


def measure(
    condition: AlertCondition,
    values: Values,
    previous: Values,
    margin: float,
    metric: Metric | None = None,
) -> ConditionResult:
    x = values.get(condition.metric)
    result = ConditionResult(
        metric=condition.metric,
        label=metric.label if metric else condition.metric,
        unit=metric.unit if metric else None,
        op=condition.op.value if condition.op else None,
        value=condition.value,
        change=condition.change.value if condition.change else None,
        by=condition.by,
        relative=condition.relative,
        versus=condition.versus.value if condition.versus else None,
        measured=x,
        met=False,
        recovered=False,
    )
    if x is None:
        return result
    if condition.is_change:
        before = previous.get(condition.metric)
        result.previous = before
        result.met, result.recovered, result.amount = _change(condition, x, before, margin)
    else:
        result.met, result.recovered = _threshold(condition, x, margin)
    return result


def evaluate(
    config: AlertConfig,
    values: Values,
    before: ScopeAlertState,
    metrics: Mapping[str, Metric] | None = None,
    period: Values | None = None,
) -> AlertOutcome:
    """The run's alert outcome from its metrics `values` and the scope's state `before`;
    `period`: the figures of the period before the run's range (None: not measured, so a
    previous-period change has no previous value)."""
    known = metrics or {}
    results = [
        measure(
            c,
            values,
            (period or {}) if c.versus == Versus.PREVIOUS_PERIOD else before.values,
            config.recovery_margin,
            known.get(c.metric),
        )
        for c in config.conditions
    ]
    combine = all if config.match == Match.ALL else any
    met = bool(results) and combine(r.met for r in results)
    if config.match == Match.ALL:
        recovered = any(r.recovered for r in results)
    else:
        recovered = bool(results) and all(r.recovered for r in results)
    if before.firing:
        state = AlertState.RECOVERED if recovered else AlertState.STILL_FIRING
    else:
        state = AlertState.FIRED if met else AlertState.NOT_MET
    return AlertOutcome(state=state, match=config.match.value, met=met, conditions=results)


def sends(config: AlertConfig, outcome: AlertOutcome) -> bool:
    """Whether the run's messages go out: when the alert fired, and on recovery if asked."""
    if outcome.state == AlertState.FIRED:
        return True
    return outcome.state == AlertState.RECOVERED and config.notify_recovery


# A change condition as a line: (drop | rise, versus the previous period).
_CHANGE_TEXTS = {
    ("drop", False): N_("{label}: {before} → {measured} (drop by at least {by})"),
    ("rise", False): N_("{label}: {before} → {measured} (rise by at least {by})"),
    ("drop", True): N_(
        "{label}: {before} → {measured} (drop by at least {by} from the previous period)"
    ),
    ("rise", True): N_(
        "{label}: {before} → {measured} (rise by at least {by} from the previous period)"
    ),
}


def describe(
    result: ConditionResult, locale: str = DEFAULT_LOCALE, label: str | None = None
) -> str:
    """One condition as people read it, in `locale`: `Compliance rate: 72.5 % < 80 %: met`,
    `Completion rate: 80 % → 50 % (drop by at least 20 %): met`; `label`: the metric's label
    in that locale (else the result's)."""
    locale = locale if locale in LOCALES else DEFAULT_LOCALE
    unit = " %" if result.unit == "%" else ""
    number = human_formats(locale).number

    def shown(value: float | None, suffix: str = unit) -> str:
        return "—" if value is None else f"{number(value)}{suffix}"

    name = label or result.label
    if result.change is not None:
        text = _CHANGE_TEXTS[result.change, result.versus == Versus.PREVIOUS_PERIOD.value]
        what = translate(locale, text).format(
            label=name,
            before=shown(result.previous),
            measured=shown(result.measured),
            by=shown(result.by or 0.0, " %" if result.relative else unit),
        )
    else:
        threshold = shown(result.value if result.value is not None else 0.0)
        what = f"{name}: {shown(result.measured)} {result.op} {threshold}"
    said = N_("{condition}: met") if result.met else N_("{condition}: not met")
    return translate(locale, said).format(condition=what)
