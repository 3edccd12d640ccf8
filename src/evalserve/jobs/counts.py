"""`ActiveCount`: the queued + running jobs of every replica on the store, for `/health` and
`/metrics`, cached so a probe costs no store read.

The count is read from the store every `max_age` seconds in the background (`value` never
waits), and this replica's own submissions and ends move it at once, so a job submitted here
is counted here before the next read; the next read brings every replica's changes.
"""

from __future__ import annotations

import asyncio
import logging

from evalserve.jobs.store import JobStore

__all__ = ["ActiveCount"]

log = logging.getLogger(__name__)


class ActiveCount:
    """Cluster-wide queued + running jobs of `store`, read every `max_age` seconds."""

    def __init__(self, store: JobStore, max_age: float = 1.0) -> None:
        self.store = store
        self.max_age = max_age
        self._value = 0

    async def refresh(self) -> int:
        """Read the count from the store now."""
        moved = self._value
        value = await self.store.count_active()
        # Local moves made while the read was in flight are kept on top of it.
        self._value = max(0, value + (self._value - moved))
        return self._value

    def value(self) -> int:
        """The count: the last read, moved by this replica's submissions and ends since."""
        return self._value

    def add(self, n: int) -> None:
        """This replica queued (+) or ended (-) jobs."""
        self._value = max(0, self._value + n)

    async def keep(self) -> None:
        """Read the count every `max_age` seconds until cancelled (a failed read keeps the
        last count and is logged)."""
        while True:
            await asyncio.sleep(self.max_age)
            try:
                await self.refresh()
            except Exception:
                log.warning("could not count the active jobs; /health shows the last count",
                            exc_info=True)
