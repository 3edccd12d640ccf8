"""`FairSlots`: the engine's slots shared fairly by owners, then by their jobs.

A free slot goes to the waiting owner that holds the fewest slots, and within that owner to its
waiting job that holds the fewest; ties go to whoever was served least recently. While every
owner has work waiting this is round-robin across owners and then across their jobs, and each
owner converges to an equal share of the engine however many items or jobs it queued: a
10-item job is not stuck behind another caller's 2,000-item job. It is work-conserving: a slot
nobody else waits for goes to whoever does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict, deque
from collections.abc import Hashable

__all__ = ["FairSlots"]


class FairSlots:
    """`capacity` slots; `acquire(owner, job)` waits for one, `release(owner, job)` returns it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self._free = self.capacity
        self._waiters: dict[Hashable, dict[str, deque[asyncio.Future[None]]]] = {}
        self._held_by_owner: defaultdict[Hashable, int] = defaultdict(int)
        self._held_by_job: defaultdict[str, int] = defaultdict(int)
        self._served: dict[Hashable, int] = {}
        self._turns = itertools.count()

    def held(self, owner: Hashable | None = None, job: str | None = None) -> int:
        """Slots held by `job`, by `owner`, or by everyone."""
        if job is not None:
            return self._held_by_job.get(job, 0)
        if owner is not None:
            return self._held_by_owner.get(owner, 0)
        return self.capacity - self._free

    def waiting(self) -> int:
        """Acquisitions waiting for a slot."""
        return sum(len(q) for jobs in self._waiters.values() for q in jobs.values())

    async def acquire(self, owner: Hashable, job: str) -> None:
        """Wait for a slot for `job` of `owner` (cancellable; a cancelled wait holds none)."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            self._grant(owner, job)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(owner, {}).setdefault(job, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(owner, job)  # granted as it was cancelled: hand it on
            else:
                self._forget(owner, job, future)
            raise

    def release(self, owner: Hashable, job: str) -> None:
        """Give back a slot `job` held; the next waiter in fair order gets it."""
        self._held_by_owner[owner] -= 1
        self._held_by_job[job] -= 1
        if self._held_by_owner[owner] <= 0:
            del self._held_by_owner[owner]
        if self._held_by_job[job] <= 0:
            del self._held_by_job[job]
        nxt = self._next_waiter()
        if nxt is None:
            self._free += 1
            if not self._held_by_owner:
                self._served.clear()  # idle: forget who was served, it bounds the dict
            return
        owner, job, future = nxt
        self._grant(owner, job)
        future.set_result(None)

    def forget(self, job: str) -> None:
        """`job` ended: drop its turn record (keeps the bookkeeping bounded)."""
        self._served.pop(("job", job), None)

    def _grant(self, owner: Hashable, job: str) -> None:
        self._held_by_owner[owner] += 1
        self._held_by_job[job] += 1
        turn = next(self._turns)
        self._served[owner] = turn
        self._served[("job", job)] = turn

    def _next_waiter(self) -> tuple[Hashable, str, asyncio.Future[None]] | None:
        while self._waiters:
            owner = min(self._waiters, key=lambda o: (self._held_by_owner.get(o, 0),
                                                      self._served.get(o, -1)))
            jobs = self._waiters[owner]
            job = min(jobs, key=lambda j: (self._held_by_job.get(j, 0),
                                           self._served.get(("job", j), -1)))
            future = jobs[job].popleft()
            if not jobs[job]:
                del jobs[job]
                if not jobs:
                    del self._waiters[owner]
            if not future.done():  # a waiter cancelled but not yet resumed is skipped
                return owner, job, future
        return None

    def _forget(self, owner: Hashable, job: str, future: asyncio.Future[None]) -> None:
        jobs = self._waiters.get(owner, {})
        queue = jobs.get(job)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            return
        if not queue:
            del jobs[job]
            if not jobs:
                del self._waiters[owner]
