"""A change report in words: "7 newly overdue, 3 completed, 2 enrolled" and one line per
changed row ("Ada Lovelace · SAF-1: Status in-progress → completed"). English only for now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.reports.jobs.evaluation import ChangeOutcome
from app.reports.types.changes import ChangeSpec


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def summary_words(spec: ChangeSpec, outcome: ChangeOutcome) -> str:
    """The counts as a manager reads them; the first run says it is the baseline."""
    if outcome.first_run:
        return (
            f"First run: {_plural(outcome.added, spec.noun)} form the baseline; "
            "the next runs report what changed since."
        )
    parts = [
        f"{outcome.transitions[t.key]} {t.words}"
        for t in spec.transitions
        if outcome.transitions.get(t.key)
    ]
    counted = sum(outcome.transitions.values())
    if outcome.added:
        parts.append(f"{outcome.added} {spec.added_words}")
    if outcome.left:
        parts.append(f"{outcome.left} {spec.left_words}")
    others = outcome.changed - counted
    if others > 0:
        parts.append(f"{others} other {'change' if others == 1 else 'changes'}")
    if not parts:
        return "Nothing changed since the last delivered run."
    return ", ".join(parts)


def change_line(
    spec: ChangeSpec, kind: str, name: str, diffs: Sequence[tuple[str, Any, Any]]
) -> str:
    if kind == "added":
        return f"{name}: {spec.added_words}"
    if kind == "left":
        return f"{name}: {spec.left_words}"
    said = "; ".join(f"{label} {_value(b)} → {_value(a)}" for label, b, a in diffs)
    return f"{name}: {said}"
