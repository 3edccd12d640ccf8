"""`ResultWriter`: stores finished items in group commits and announces them in batches.

Every finished item goes to one queue. The writer takes what is queued (up to
`WRITE_GROUP` rows) and stores it in one transaction; every `batch_size` results of a job
become one `batch_complete` event, stored in that same transaction and published on the bus
only once stored. `JobBatches` holds a running job's stored results not yet announced.

Nothing unstored is ever announced: a batch event is planned from the rows being committed
without touching `JobBatches`, which takes the rows (progress, counters, the buffer of rows to
announce) only once their commit succeeded. A failed commit is retried with backoff: a few
times for an unexpected error (then the rows' futures fail), and for as long as it lasts when
the store cannot write (`StorageFullError`: disk full, database locked), so running jobs pause
and go on once space is back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from evalserve.errors import StorageFullError
from evalserve.jobs.events import EventBus
from evalserve.jobs.models import EventType, Job, JobEvent, ResultRow
from evalserve.jobs.progress import ProgressTracker
from evalserve.jobs.store import JobStore, NewEvent, StatusChange

__all__ = ["ResultWriter", "JobBatches"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: At most this many results per transaction.
WRITE_GROUP = 2048


@dataclass
class _Plan:
    """What committing some rows does to one job's `JobBatches`, computed before the commit."""

    events: list[NewEvent]
    rows: list[ResultRow]
    held: list[ResultRow]
    batches: int


@dataclass
class JobBatches:
    """A running job's progress and its stored results not yet announced (`rows`)."""

    job: Job
    tracker: ProgressTracker
    batch_size: int
    rows: list[ResultRow] = field(default_factory=list)

    def plan(self, rows: Sequence[ResultRow] = (), *, flush: bool = False) -> _Plan:
        """The `batch_complete` events that storing `rows` completes (with `flush`, also the
        last partial batch), changing nothing: `apply` the plan once its commit succeeded."""
        tracker = dataclasses.replace(self.tracker)
        held, events, number = list(self.rows), [], self.job.batches
        for row in rows:
            tracker.add(1)
            held.append(row)
            if len(held) >= self.batch_size:
                number += 1
                events.append(self._event(number, held, tracker))
                held = []
        if flush and held:
            number += 1
            events.append(self._event(number, held, tracker))
            held = []
        return _Plan(events, list(rows), held, number)

    def apply(self, plan: _Plan) -> None:
        """Take a committed plan: its rows count as stored, its events as announced."""
        self.tracker.add(len(plan.rows))
        for row in plan.rows:
            self.stored(row)
        self.rows = plan.held
        self.job.batches = plan.batches

    def take(self) -> NewEvent | None:
        """The `batch_complete` event announcing every stored row held (None when none is);
        the rows count as announced at once: prefer `ResultWriter.announce`, which lets them
        go only once that event is stored."""
        plan = self.plan(flush=True)
        self.apply(plan)
        return plan.events[0] if plan.events else None

    def stored(self, row: ResultRow) -> None:
        """Count a stored result in the job's totals (as the store counts it)."""
        self.job.completed += 1
        if row.status == "scored" and row.score is not None:
            self.job.scored += 1
            self.job.score_sum += float(row.score)
        elif row.status == "error":
            self.job.errors += 1
        else:
            self.job.unscored += 1

    def _event(self, number: int, rows: list[ResultRow], tracker: ProgressTracker) -> NewEvent:
        return NewEvent(
            self.job.id, EventType.BATCH,
            {"batch_number": number, "results": [r.record for r in rows],
             "progress": tracker.snapshot()},
            announces=[r.idx for r in rows],
        )


_Write = tuple[JobBatches, ResultRow, "asyncio.Future[None]"]


class ResultWriter:
    """One writer task over `store`; `write` resolves once the row is stored (or failed).

    `on_stored(n)` is called after each group commit with the number of rows stored.
    A failed commit is tried again after `backoff` seconds, doubling up to `max_backoff`
    (`sleep` waits): `retries` more times for an unexpected error, for as long as it lasts for
    `StorageFullError` (but `retries` times while closing). `storage_error` is the
    `StorageFullError` being waited out (None while the store writes).
    """

    def __init__(self, store: JobStore, bus: EventBus, *,
                 on_stored: Callable[[int], None] | None = None, retries: int = 3,
                 backoff: float = 0.05, max_backoff: float = 2.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.store = store
        self.bus = bus
        self.on_stored = on_stored
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.storage_error: StorageFullError | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._queue: asyncio.Queue[_Write] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._closing = False

    def start(self) -> None:
        """Start the writer task."""
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="jobs-writer")

    async def close(self) -> None:
        """Store everything queued, then stop. While the store cannot write, each remaining
        group is tried a bounded number of times (its items stay ungraded in the store and
        are graded again when the job resumes)."""
        self._closing = True
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def wait_writable(self) -> None:
        """Return at once while the store writes; while it cannot (`storage_error`), once it
        writes again. The runner awaits this before starting an item, so a job pauses rather
        than grading items whose results could only wait in memory."""
        await self._writable.wait()

    def write(self, batches: JobBatches, row: ResultRow) -> asyncio.Future[None]:
        """Queue `row` of `batches.job`; the future is done once the row is stored."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((batches, row, future))
        return future

    async def announce(self, batches: JobBatches | None, events: Sequence[NewEvent] = (),
                       status: Sequence[StatusChange] = ()) -> list[JobEvent]:
        """Store, in one transaction retried like a group commit, the last `batch_complete`
        of `batches`' stored rows not yet announced, then `events` and `status`; publish what
        was stored. The rows count as announced only once that commit succeeded."""
        async with self._lock:
            plan: _Plan | None = None

            def commit() -> Awaitable[list[JobEvent]]:
                nonlocal plan
                plan = batches.plan(flush=True) if batches is not None else None
                planned = plan.events if plan is not None else []
                return self.store.commit(events=[*planned, *events], status=status)

            stored = await self._retrying(commit, "the job events")
            if batches is not None and plan is not None:
                batches.apply(plan)
        self.bus.publish(stored)
        return stored

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
        by_job: dict[int, tuple[JobBatches, list[ResultRow]]] = {}
        for batches, row, _ in group:
            by_job.setdefault(id(batches), (batches, []))[1].append(row)
        async with self._lock:
            plans: list[tuple[JobBatches, _Plan]] = []

            def commit() -> Awaitable[list[JobEvent]]:
                # Planned again on every try: the progress in the events is that of the commit.
                plans[:] = [(b, b.plan(rows)) for b, rows in by_job.values()]
                return self.store.commit([row for _, row, _ in group],
                                         [e for _, p in plans for e in p.events])

            stored = await self._retrying(commit, f"{len(group)} result(s)")
            for batches, plan in plans:
                batches.apply(plan)
        if self.on_stored is not None:
            self.on_stored(len(group))
        for _, _, future in group:
            if not future.done():
                future.set_result(None)
        self.bus.publish(stored)

    async def _retrying(self, commit: Callable[[], Awaitable[T]], what: str) -> T:
        """`commit()` until it succeeds: `retries` more tries for an unexpected error, as many
        as it takes while the store cannot write (unless closing)."""
        failures = 0
        while True:
            try:
                out = await commit()
            except StorageFullError as exc:
                failures += 1
                if self._closing and failures > self.retries:
                    raise
                if self.storage_error is None:
                    log.error("storing %s paused: %s", what, exc)
                self.storage_error = exc
                self._writable.clear()
            except Exception as exc:
                failures += 1
                if failures > self.retries:
                    raise
                log.warning("storing %s failed (%s: %s); retry %d of %d", what,
                            type(exc).__name__, exc, failures, self.retries)
            else:
                if self.storage_error is not None:
                    log.warning("the job store writes again; storing %s resumed", what)
                    self.storage_error = None
                    self._writable.set()
                return out
            await self.sleep(min(self.max_backoff, self.backoff * 2 ** (failures - 1)))


def _fail(group: list[_Write], exc: BaseException) -> None:
    for _, _, future in group:
        if not future.done():
            future.set_exception(exc)
