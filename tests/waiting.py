"""The one way tests wait: for a condition, with a deadline, failing with what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

__all__ = ["wait_for", "wait_until"]


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
             interval: float = 0.05) -> Any:
    """Call `predicate` until it returns a truthy value and return that value; fail the test
    after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        time.sleep(interval)


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0,
                     what: str = "condition", interval: float = 0.01) -> Any:
    """`wait_for` inside an event loop: `predicate` may be sync or async."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        await asyncio.sleep(interval)
