"""Payload numbers as older clients stored them, held against the event contract.

Legacy events carry numbers as text (`payload.score: "85"`, `payload.durationSeconds: "300"`);
reports only read numbers (a text score is no score, a text duration adds no time). The contract
(`EventPayload`: score 0–100, durationSeconds a whole number of seconds from 0 to a week)
decides what each stored value becomes: text the contract accepts is coerced to the number it
stands for; a value it refuses (text that is no number, a fraction of a second, a duration out of
range, a boolean) is reported and left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.learning_events.schemas import EventPayload

# The payload keys whose stored values the contract types as numbers.
NUMBER_KEYS = ("score", "durationSeconds")


@dataclass(frozen=True)
class Verdict:
    """What the contract makes of one stored value: `value` to store instead (text it coerces),
    or `refused` (a reason code), or neither (a conforming number: nothing to do)."""

    value: int | float | None = None
    refused: str | None = None

    @property
    def changes(self) -> bool:
        return self.value is not None


_OK = Verdict()


def judge(key: str, stored: Any) -> Verdict:
    """The contract's verdict on `payload[key]` as stored (None: the key is absent)."""
    if stored is None:
        return _OK
    refused = Verdict(refused=f"invalid-payload-{key}")
    if isinstance(stored, bool) or not isinstance(stored, str | int | float):
        return refused
    try:
        payload = EventPayload.model_validate({key: stored})
    except ValidationError:
        return refused
    value = payload.model_dump(by_alias=True)[key]
    if isinstance(stored, str):
        return Verdict(value=value)
    return _OK
