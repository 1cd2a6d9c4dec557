"""A change report in a message: its heading and counts in words, the first changed rows, and
the same as data for webhooks (`data.changes`), in the message's locale (its counts and lines
were said in it when the run was committed: schedules/changes/gate.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.common.time import as_utc
from app.i18n import DEFAULT_LOCALE, LOCALES, human_formats, translate
from app.reports.deliveries.models import DeliveryContent

CHAT_LINES = 5  # changed rows named in a Slack or Teams message (the e-mail names up to 20)


def _supported(locale: str) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def since_text(since: datetime | None, locale: str) -> str:
    """When the compared run was made, in UTC (`2026-12-01 05:00 UTC`, `01.12.2026, 05:00
    UTC`), or "the last delivered run"."""
    locale = _supported(locale)
    if since is None:
        return translate(locale, "the last delivered run")
    return f"{human_formats(locale).datetime(as_utc(since))} UTC"


def change_heading(content: DeliveryContent) -> str:
    changes = content.changes
    assert changes is not None
    if changes.first_run:
        return changes.summary
    locale = _supported(content.locale)
    return translate(locale, "Changes since {since}: {summary}").format(
        since=since_text(changes.since, locale), summary=changes.summary
    )


def change_lines(content: DeliveryContent, limit: int | None = None) -> list[str]:
    """The heading and the first changed rows (`limit` of them), as the message says them."""
    changes = content.changes
    if changes is None:
        return []
    rows = changes.lines if limit is None else changes.lines[:limit]
    shown = [f"- {line}" for line in rows] if not changes.first_run else []
    total = sum(changes.counts.get(k, 0) for k in ("added", "left", "changed"))
    if shown and total > len(shown):
        locale = _supported(content.locale)
        more = translate(locale, "… and {count} more (every change is in the file)")
        shown.append(more.format(count=human_formats(locale).integer(total - len(shown))))
    return [change_heading(content), *shown]


def change_data(content: DeliveryContent) -> dict[str, Any] | None:
    changes = content.changes
    if changes is None:
        return None
    return {
        "firstRun": changes.first_run,
        "since": changes.since.isoformat().replace("+00:00", "Z") if changes.since else None,
        "counts": changes.counts,
        "transitions": changes.transitions,
        "summary": changes.summary,
        "lines": changes.lines,
    }
