"""`Execution`: a job while this process runs it: its item tasks, pending commits, stop, and
the grading of one item (an engine slot per attempt, transient failures retried, then an
`error` record: the item fails alone)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from evalserve.errors import InvalidInputError
from evalserve.jobs.grading import Grader
from evalserve.jobs.models import Job
from evalserve.jobs.retry import RetryPolicy, engine_gone, is_transient
from evalserve.jobs.slots import FairSlots
from evalserve.jobs.store import PendingItem
from evalserve.jobs.writer import JobBatches

__all__ = ["Execution"]

log = logging.getLogger(__name__)


@dataclass
class Execution:
    """A job while this process runs it."""

    job: Job
    batches: JobBatches | None = None
    room: asyncio.Semaphore | None = None
    """Bounds the job's live item tasks (waiting for a slot, graded, or backing off)."""
    tasks: set[asyncio.Task] = field(default_factory=set)
    commits: set[asyncio.Future] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    lost: bool = False
    """Its lease is no longer this replica's (cancelled or deleted elsewhere, or taken over):
    it stops here without an end (whoever holds it ends it)."""
    failure: BaseException | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self.stopping.set()
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()

    async def _race(self, awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
        """Await `awaitable` unless the job stops first (then it is cancelled); its future."""
        work = asyncio.ensure_future(awaitable)
        if work.done():
            return work
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        return work

    async def until(self, awaitable: Awaitable[Any]) -> bool:
        """Await `awaitable` unless the job stops first (then it is cancelled): True when it
        finished."""
        work = await self._race(awaitable)
        return not work.cancelled() and not self.stopping.is_set()

    async def wait_room(self) -> bool:
        """Wait until the job may start another item task; False when it stops first."""
        assert self.room is not None
        acquired = await self._race(self.room.acquire())
        if acquired.cancelled():
            return False
        if self.stopping.is_set():
            self.room.release()
            return False
        return True

    async def grade(self, grader: Grader, pending: PendingItem, slots: FairSlots,
                    retry: RetryPolicy) -> tuple[str, float | None, dict[str, Any]]:
        """Grade one item, retrying transient failures; `(status, score, record)`, where an
        item that still fails is an `error` record. Holds an engine slot only while grading
        (not while backing off). A gone engine raises: that fails the job."""
        owner, job_id = self.job.owner, self.job.id
        attempt = 0
        while True:
            await slots.acquire(owner, job_id)
            try:
                return await grader.grade(pending.data, pending.idx)
            except InvalidInputError as exc:
                # The engine refused this item (e.g. too long): the item is unscored, not the job.
                return "unscored", None, grader.failed_record(pending.item_id, exc.message)
            except Exception as exc:
                if engine_gone(exc):
                    raise
                error = exc
            finally:
                slots.release(owner, job_id)
            attempt += 1
            if not is_transient(error) or attempt > retry.retries:
                log.warning("job %s item %s failed after %d attempt(s): %s", job_id,
                            pending.item_id, attempt, error)
                return "error", None, grader.error_record(pending.item_id, error, attempt)
            await retry.pause(attempt, error)
