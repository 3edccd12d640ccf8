"""When the runner tries again: transient engine errors per item, store errors per operation.

- An item whose engine call failed transiently (a connection error, an upstream 429 or 5xx, a
  timeout, any `EngineError` but the engine being gone) is retried up to `ITEM_RETRIES` times
  after an exponential backoff with jitter (`ITEM_RETRY_BACKOFF_SECONDS`, doubled each time,
  at least an upstream's `Retry-After`); then it is stored as an `error` item and the job
  goes on.
- `EngineUnavailableError` means the engine is gone (closing, or never loaded): that fails the
  job, it is not the item's fault.
- A store operation of the runner (a read, the final commit) is retried a few times too.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from evalserve.errors import (
    EngineError,
    EngineUnavailableError,
    InvalidInputError,
    RateLimitError,
)

__all__ = ["RetryPolicy", "is_transient", "engine_gone"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: No backoff is longer than this (seconds), whatever the attempt or `Retry-After`.
MAX_BACKOFF = 60.0


def engine_gone(exc: BaseException) -> bool:
    """The engine cannot grade anything any more: a job-level failure."""
    return isinstance(exc, EngineUnavailableError)


def is_transient(exc: BaseException) -> bool:
    """Worth another try of the same item: connection errors, timeouts, upstream 429/5xx and
    other engine failures; never invalid input nor a gone engine."""
    if isinstance(exc, InvalidInputError) or engine_gone(exc):
        return False
    return isinstance(exc, EngineError | RateLimitError | ConnectionError | TimeoutError)


@dataclass
class RetryPolicy:
    """`retries` more tries after a failure, the k-th after about `backoff * 2**(k-1)` s."""

    retries: int = 3
    backoff: float = 0.5
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rand: Callable[[], float] = random.random
    delays: list[float] = field(default_factory=list)
    """Every backoff waited so far (for tests and logs)."""

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """The wait before retry number `attempt` (1-based): half the exponential step plus a
        random half of it (so failing items do not retry in lockstep), at least a 429's
        `retry_after`, at most `MAX_BACKOFF`."""
        step = self.backoff * 2 ** (attempt - 1)
        wait = step / 2 + self.rand() * step / 2
        if isinstance(exc, RateLimitError):
            wait = max(wait, float(exc.retry_after))
        return min(wait, MAX_BACKOFF)

    async def pause(self, attempt: int, exc: BaseException | None = None) -> None:
        wait = self.delay(attempt, exc)
        self.delays.append(wait)
        del self.delays[:-100]
        await self.sleep(wait)

    async def run(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """`await fn()`, retried on any `Exception` up to `retries` times; the last one is
        raised."""
        attempt = 0
        while True:
            try:
                return await fn()
            except Exception as exc:
                if attempt >= self.retries:
                    raise
                attempt += 1
                log.warning("%s failed (%s); retry %d of %d", what, exc, attempt, self.retries)
                await self.pause(attempt, exc)
