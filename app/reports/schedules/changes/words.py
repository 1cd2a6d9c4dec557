"""A change report in words, in a message's locale: "7 newly overdue, 3 completed, 2 enrolled"
("7 neu überfällig, 3 abgeschlossen, 2 eingeschrieben") and one line per changed row
("Ada Lovelace · SAF-1: Status in-progress → completed").

The tracker says them in English while it compares (`summary_words`, `change_line`: the run's
stored evaluation); each message then says them again in its own locale (`summary_words` with
the locale, `said_in`): the counts come from the outcome, and a line made by `change_line`
keeps what it says (`ChangeLine`). Numbers follow the locale (Babel); coded values (a status, a
compliance state) are shown by their lookup label in a locale other than English, by their code
in English (as the list of changes has them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.i18n import DEFAULT_LOCALE, LOCALES, N_, human_formats, translate, translate_plural
from app.lookups import validation
from app.reports.jobs.evaluation import ChangeOutcome
from app.reports.types.changes import ChangeSpec

Diff = tuple[str, Any, Any]  # the field's label, before, after


class ChangeLine(str):
    """A change as the English line says it, remembering its parts, so that a message in
    another locale can say it in its words (`said_in`). Stored, it is its English text."""

    kind: str
    name: str
    diffs: tuple[Diff, ...]

    def __new__(cls, text: str, kind: str, name: str, diffs: Sequence[Diff]) -> ChangeLine:
        line = super().__new__(cls, text)
        line.kind, line.name, line.diffs = kind, name, tuple(diffs)
        return line


def _locale(locale: str) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def count_of(noun: str, count: int, locale: str) -> str:
    """`3 enrollments`, `1 course` (`3 Einschreibungen`, `1 Kurs`)."""
    if noun == "enrollment":
        text = translate_plural(locale, "{count} enrollment", "{count} enrollments", count)
    elif noun == "course":
        text = translate_plural(locale, "{count} course", "{count} courses", count)
    elif noun == "department":
        text = translate_plural(locale, "{count} department", "{count} departments", count)
    elif noun == "period":
        text = translate_plural(locale, "{count} period", "{count} periods", count)
    else:
        text = translate_plural(locale, "{count} row", "{count} rows", count)
    return text.format(count=human_formats(locale).integer(count))


def value_text(spec: ChangeSpec, label: str, value: Any, locale: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return translate(locale, N_("yes") if value else N_("no"))
    if isinstance(value, int | float):
        return human_formats(locale).number(value)
    text = str(value)
    if locale != DEFAULT_LOCALE:
        lookup = next((f.lookup for f in spec.fields if f.label == label), None)
        if lookup is not None:
            return validation.labels(lookup, locale).get(text, text)
    return text


def summary_words(spec: ChangeSpec, outcome: ChangeOutcome, locale: str = DEFAULT_LOCALE) -> str:
    """The counts as a manager reads them; the first run says it is the baseline."""
    locale = _locale(locale)
    number = human_formats(locale).integer
    if outcome.first_run:
        return translate_plural(
            locale,
            "First run: {rows} forms the baseline; the next runs report what changed since.",
            "First run: {rows} form the baseline; the next runs report what changed since.",
            outcome.added,
        ).format(rows=count_of(spec.noun, outcome.added, locale))
    parts = [
        f"{number(outcome.transitions[t.key])} {translate(locale, t.words)}"
        for t in spec.transitions
        if outcome.transitions.get(t.key)
    ]
    counted = sum(outcome.transitions.values())
    if outcome.added:
        parts.append(f"{number(outcome.added)} {translate(locale, spec.added_words)}")
    if outcome.left:
        parts.append(f"{number(outcome.left)} {translate(locale, spec.left_words)}")
    others = outcome.changed - counted
    if others > 0:
        parts.append(
            translate_plural(
                locale, "{count} other change", "{count} other changes", others
            ).format(count=number(others))
        )
    if not parts:
        return translate(locale, "Nothing changed since the last delivered run.")
    return ", ".join(parts)


def _line(spec: ChangeSpec, kind: str, name: str, diffs: Sequence[Diff], locale: str) -> str:
    if kind == "added":
        return f"{name}: {translate(locale, spec.added_words)}"
    if kind == "left":
        return f"{name}: {translate(locale, spec.left_words)}"
    said = "; ".join(
        f"{translate(locale, label)} {value_text(spec, label, b, locale)} → "
        f"{value_text(spec, label, a, locale)}"
        for label, b, a in diffs
    )
    return f"{name}: {said}"


def change_line(
    spec: ChangeSpec, kind: str, name: str, diffs: Sequence[Diff], locale: str = DEFAULT_LOCALE
) -> ChangeLine:
    """One changed row: `Ada Lovelace · SAF-1: Status in-progress → completed`."""
    return ChangeLine(_line(spec, kind, name, diffs, _locale(locale)), kind, name, diffs)


def said_in(spec: ChangeSpec, line: str, locale: str) -> str:
    """`line` in `locale` (a line that is only text, e.g. read back from storage, as it is)."""
    if isinstance(line, ChangeLine):
        return _line(spec, line.kind, line.name, line.diffs, _locale(locale))
    return line
