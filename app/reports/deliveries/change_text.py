"""A change report in a message: its heading and counts in words, the first changed rows, and
the same as data for webhooks (`data.changes`). English words for now (see docs/changes.md)."""

from __future__ import annotations

from typing import Any

from app.reports.deliveries.models import DeliveryContent

CHAT_LINES = 5  # changed rows named in a Slack or Teams message (the e-mail names up to 20)


def change_heading(content: DeliveryContent) -> str:
    changes = content.changes
    assert changes is not None
    if changes.first_run:
        return changes.summary
    since = f"{changes.since:%Y-%m-%d %H:%M} UTC" if changes.since else "the last delivered run"
    return f"Changes since {since}: {changes.summary}"


def change_lines(content: DeliveryContent, limit: int | None = None) -> list[str]:
    """The heading and the first changed rows (`limit` of them), as the message says them."""
    changes = content.changes
    if changes is None:
        return []
    rows = changes.lines if limit is None else changes.lines[:limit]
    shown = [f"- {line}" for line in rows] if not changes.first_run else []
    total = sum(changes.counts.get(k, 0) for k in ("added", "left", "changed"))
    if shown and total > len(shown):
        shown.append(f"… and {total - len(shown)} more (every change is in the file)")
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
