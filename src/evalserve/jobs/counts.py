"""`ActiveCount`: the queued + running jobs of every replica on the store, for `/health` and
`/metrics`, cached so a probe costs no store read.

The count is read from the store at most every `max_age` seconds (in the background: `value`
never waits), and this replica's own submissions and ends move it at once, so a job submitted
here is counted here before the next read; the next read brings every replica's changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from evalserve.jobs.store import JobStore

__all__ = ["ActiveCount"]

log = logging.getLogger(__name__)


class ActiveCount:
    """Cluster-wide queued + running jobs of `store`, at most `max_age` seconds old."""

    def __init__(self, store: JobStore, max_age: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.max_age = max_age
        self.clock = clock
        self._value = 0
        self._read_at: float | None = None
        self._reading: asyncio.Task | None = None

    async def refresh(self) -> int:
        """Read the count from the store now."""
        started = self.clock()
        moved = self._value
        value = await self.store.count_active()
        # Local moves made while the read was in flight are kept on top of it.
        self._value = max(0, value + (self._value - moved))
        self._read_at = started
        return self._value

    def value(self) -> int:
        """The count; a stale one starts a background read (the next call sees it)."""
        stale = self._read_at is None or self.clock() - self._read_at > self.max_age
        if stale and (self._reading is None or self._reading.done()):
            with contextlib.suppress(RuntimeError):  # no running loop: the cached count
                self._reading = asyncio.get_running_loop().create_task(self._refresh_quietly())
        return self._value

    def add(self, n: int) -> None:
        """This replica queued (+) or ended (-) jobs."""
        self._value = max(0, self._value + n)

    async def close(self) -> None:
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception:
            log.warning("could not count the active jobs; /health shows the last count",
                        exc_info=True)
