"""What a change report compares, per report type: the row key (which rows are "the same row"
in two runs), the fields compared (with bands where a raw value would change on every run,
e.g. progress 0 / 1-49 / 50-99 / 100) and the transitions counted in words ("newly overdue",
"completed").

`CHANGE_SPECS` is the one place a type declares it; a type without an entry offers no change
reports (assessment-results: every row is one submission, which never changes once made; a
new submission is a new row, which its learning-activity or the report itself already shows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from app.i18n import N_

# (key hash, fields hash, the row's name, the compared values): what a run keeps of a row.
Fingerprint = tuple[str, str, str, list[Any]]


def progress_band(value: Any) -> str | None:
    """0 / 1-49 / 50-99 / 100: progress moves a little on every run; a band says something."""
    if value is None:
        return None
    number = float(value)
    if number <= 0:
        return "0"
    if number < 50:
        return "1-49"
    if number < 100:
        return "50-99"
    return "100"


def rounded(digits: int) -> Callable[[Any], Any]:
    def band(value: Any) -> Any:
        return None if value is None else round(float(value), digits)

    return band


_SIMPLE = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> Any:
    if type(value) in _SIMPLE:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


@dataclass(frozen=True)
class ChangeField:
    key: str  # the column
    label: str  # English, marked for the catalogs: a message says it in its locale
    band: Callable[[Any], Any] | None = None  # what is compared instead of the raw value
    lookup: str | None = None  # its codes' lookup category (their labels, in other locales)


@dataclass(frozen=True)
class Transition:
    """A change counted in words: `test(before, after)` of one field's compared values."""

    key: str  # e.g. newly-overdue
    words: str  # e.g. "newly overdue" (marked for the catalogs)
    field: str
    test: Callable[[Any, Any], bool]


def _became(value: Any) -> Callable[[Any, Any], bool]:
    return lambda before, after: before != value and after == value


@dataclass(frozen=True)
class ChangeSpec:
    key_columns: tuple[str, ...]  # the row key
    name_columns: tuple[str, ...]  # how a row is named in a message
    fields: tuple[ChangeField, ...]
    transitions: tuple[Transition, ...] = ()
    added_words: str = N_("added")
    left_words: str = N_("no longer listed")
    noun: str = "row"  # a row of the type (the changes file's column; `words.count_of`)
    field_keys: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_keys", tuple(f.key for f in self.fields))


_LEARNER_COURSE = ("learnerEmail", "courseCode")
_LEARNER_NAME = ("learnerName", "courseCode")

CHANGE_SPECS: Mapping[str, ChangeSpec] = {
    "learner-progress": ChangeSpec(
        key_columns=_LEARNER_COURSE,
        name_columns=_LEARNER_NAME,
        fields=(
            ChangeField("status", N_("Status"), lookup="enrollment-status"),
            ChangeField("progressPercent", N_("Progress"), progress_band),
            ChangeField("score", N_("Score"), rounded(1)),
            ChangeField("overdue", N_("Overdue")),
        ),
        transitions=(
            Transition("newly-overdue", N_("newly overdue"), "overdue", _became(True)),
            Transition("completed", N_("completed"), "status", _became("completed")),
        ),
        added_words=N_("enrolled"),
        noun="enrollment",
    ),
    "compliance-status": ChangeSpec(
        key_columns=_LEARNER_COURSE,
        name_columns=_LEARNER_NAME,
        fields=(
            ChangeField("status", N_("Status"), lookup="enrollment-status"),
            ChangeField("complianceState", N_("Compliance"), lookup="compliance-state"),
        ),
        transitions=(
            Transition("newly-overdue", N_("newly overdue"), "complianceState", _became("overdue")),
            Transition("completed", N_("completed"), "status", _became("completed")),
        ),
        added_words=N_("enrolled"),
        noun="enrollment",
    ),
    "course-completion": ChangeSpec(
        key_columns=("courseCode",),
        name_columns=("courseCode", "courseTitle"),
        fields=(
            ChangeField("enrolled", N_("Enrolled")),
            ChangeField("completed", N_("Completed")),
            ChangeField("completionRate", N_("Completion rate"), rounded(1)),
            ChangeField("averageScore", N_("Average score"), rounded(1)),
        ),
        noun="course",
    ),
    "department-summary": ChangeSpec(
        key_columns=("departmentCode", "departmentName"),
        name_columns=("departmentName",),
        fields=(
            ChangeField("enrollments", N_("Enrollments")),
            ChangeField("completed", N_("Completed")),
            ChangeField("completionRate", N_("Completion rate"), rounded(1)),
            ChangeField("overdue", N_("Overdue")),
        ),
        noun="department",
    ),
    "learning-activity": ChangeSpec(
        key_columns=("periodStart", "eventType"),
        name_columns=("periodStart", "eventType"),
        fields=(ChangeField("events", N_("Events")), ChangeField("uniqueLearners", N_("Learners"))),
        noun="period",
    ),
}


def change_spec(report_type: str) -> ChangeSpec | None:
    return CHANGE_SPECS.get(report_type)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class RowFingerprints:
    """Turns a run's rows (positioned by `columns`) into fingerprints: the key and the compared
    fields hashed, the row's name and the compared values kept for "before → after"."""

    def __init__(self, spec: ChangeSpec, columns: Sequence[str]) -> None:
        at = {key: i for i, key in enumerate(columns)}
        self.spec = spec
        self.keys = tuple(at[k] for k in spec.key_columns if k in at)
        self.names = tuple(at[k] for k in spec.name_columns if k in at)
        self.fields = tuple((at[f.key], f.band) for f in spec.fields if f.key in at)
        self.field_labels = tuple(f.label for f in spec.fields if f.key in at)
        self.field_keys = tuple(f.key for f in spec.fields if f.key in at)
        if not self.keys:
            raise ValueError("the run's columns hold none of the row key's columns")

    def of(self, row: Sequence[Any]) -> Fingerprint:
        # The values are plain (str, number, bool, None) here, so their repr is stable.
        key = _digest(repr([_plain(row[i]) for i in self.keys]))
        values = [_plain(band(row[i]) if band else row[i]) for i, band in self.fields]
        name = " · ".join(str(row[i]) for i in self.names if row[i] not in (None, ""))
        return (key, _digest(repr(values)), name, values)
