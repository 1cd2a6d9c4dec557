"""Waiting for something to become true, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float,
    what: str = "the condition",
    *,
    interval: float = 0.2,
) -> T:
    """Awaits `predicate()` every `interval` seconds until it returns something truthy, and
    returns that (so never None: a predicate returning `X | None` gives an `X`); fails the test naming `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
