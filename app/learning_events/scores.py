"""Quiz scores as stored by older clients."""

from __future__ import annotations

import math
from typing import Any


def numeric_string(value: Any) -> int | float | None:
    """The number a legacy string score holds ("85" -> 85, " 72.5" -> 72.5); None for anything
    else (numbers already, non-numeric text, NaN / infinity)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
