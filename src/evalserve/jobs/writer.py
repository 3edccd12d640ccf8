"""`ResultWriter`: stores finished items in group commits and announces them in batches.

Every finished item goes to one queue. The writer takes what is queued (up to
`WRITE_GROUP` rows) and stores it in one transaction; every `batch_size` results of a job
become one `batch_complete` event, stored in that same transaction and published on the bus
only once stored. `JobBatches` holds a running job's results not yet announced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from evalserve.jobs.events import EventBus
from evalserve.jobs.models import EventType, Job, ResultRow
from evalserve.jobs.progress import ProgressTracker
from evalserve.jobs.store import JobStore, NewEvent

__all__ = ["ResultWriter", "JobBatches"]

log = logging.getLogger(__name__)

#: At most this many results per transaction.
WRITE_GROUP = 2048


@dataclass
class JobBatches:
    """A running job's progress and its stored results not yet announced."""

    job: Job
    tracker: ProgressTracker
    batch_size: int
    rows: list[ResultRow] = field(default_factory=list)

    def add(self, row: ResultRow) -> NewEvent | None:
        """Count `row` as finished; the `batch_complete` event when it fills a batch."""
        self.tracker.add(1)
        self.rows.append(row)
        return self.take() if len(self.rows) >= self.batch_size else None

    def take(self) -> NewEvent | None:
        """The `batch_complete` event announcing every row held (None when none is)."""
        if not self.rows:
            return None
        rows, self.rows = self.rows, []
        self.job.batches += 1
        return NewEvent(
            self.job.id, EventType.BATCH,
            {"batch_number": self.job.batches, "results": [r.record for r in rows],
             "progress": self.tracker.snapshot()},
            announces=[r.idx for r in rows],
        )

    def stored(self, row: ResultRow) -> None:
        """Count a stored result in the job's totals."""
        self.job.completed += 1
        if row.status == "scored" and row.score is not None:
            self.job.scored += 1
            self.job.score_sum += float(row.score)
        else:
            self.job.unscored += 1


_Write = tuple[JobBatches, ResultRow, "asyncio.Future[None]"]


class ResultWriter:
    """One writer task over `store`; `write` resolves once the row is stored (or failed).

    `on_stored(n)` is called after each group commit with the number of rows stored.
    """

    def __init__(self, store: JobStore, bus: EventBus, *,
                 on_stored: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.bus = bus
        self.on_stored = on_stored
        self._queue: asyncio.Queue[_Write] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._run(), name="jobs-writer")

    async def close(self) -> None:
        """Store everything queued, then stop."""
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def write(self, batches: JobBatches, row: ResultRow) -> asyncio.Future[None]:
        """Queue `row` of `batches.job`; the future is done once the row is stored."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((batches, row, future))
        return future

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while not self._queue.empty() and len(group) < WRITE_GROUP:
                group.append(self._queue.get_nowait())
            try:
                await self._write_group(group)
            except Exception as exc:  # never let the writer die: its items' jobs fail instead
                log.exception("writing %d result(s) failed", len(group))
                _fail(group, exc)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _write_group(self, group: list[_Write]) -> None:
        events = [e for e in (batches.add(row) for batches, row, _ in group) if e is not None]
        stored = await self.store.commit([row for _, row, _ in group], events)
        if self.on_stored is not None:
            self.on_stored(len(group))
        for batches, row, future in group:
            batches.stored(row)
            if not future.done():
                future.set_result(None)
        self.bus.publish(stored)


def _fail(group: list[_Write], exc: BaseException) -> None:
    for _, _, future in group:
        if not future.done():
            future.set_exception(exc)
