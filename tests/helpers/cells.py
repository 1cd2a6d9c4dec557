"""A JSON value (a preview's or a `/rows` page's cell) as the CSV of the same report prints it."""

from __future__ import annotations

from typing import Any


def csv_text(value: Any) -> str:
    """Empty for null, `true` / `false` for booleans, the text otherwise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
