"""The in-process event bus and the subscription that SSE streams and the CLI follow.

Events are stored first (`JobStore.commit`), then published here to wake subscribers at once.
A subscription replays stored events after the client's last id, then yields live ones; a
missed live event (a slow subscriber whose queue overflowed) is re-read from the store, and a
bounded poll of the store covers anything the bus could not deliver. A read the store cannot
serve for now (`StorageFullError`) is retried with backoff: the stream waits, it does not end.

Events of jobs that another replica runs reach this replica's bus through `EventRelay`: the
store notifies it of every commit's last event id (PostgreSQL `LISTEN`/`NOTIFY`), and for jobs
with subscribers here it reads the new events from the store and publishes them. A store that
cannot notify (SQLite) leaves those subscribers to the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from typing import TypeVar

from evalserve.errors import NotFoundError, StorageFullError
from evalserve.jobs.models import JobEvent
from evalserve.jobs.store import JobStore

__all__ = ["EventBus", "EventRelay", "follow_events"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_QUEUE_SIZE = 1024
#: Longest wait between two tries of a read the store could not serve.
_MAX_BACKOFF = 5.0


class EventBus:
    """Fan-out of stored events to live subscribers, per job (asyncio, one event loop)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[JobEvent]]] = defaultdict(set)
        self._latest: dict[str, int] = {}

    def publish(self, events: Iterable[JobEvent]) -> None:
        """Wake every subscriber of each event's job. Never blocks: a full queue drops the event
        (its subscriber notices the gap in ids and re-reads the store)."""
        for event in events:
            queues = self._subscribers.get(event.job_id)
            if not queues:
                continue
            self._latest[event.job_id] = max(event.id, self._latest.get(event.job_id, 0))
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(event)

    def latest(self, job_id: str) -> int:
        """The highest event id published for the job while it had subscribers (0: none)."""
        return self._latest.get(job_id, 0)

    @contextlib.contextmanager
    def subscribe(self, job_id: str):  # noqa: ANN201 - a context manager yielding the queue
        """Receive the job's events published while the block runs."""
        queue: asyncio.Queue[JobEvent] = asyncio.Queue(_QUEUE_SIZE)
        self._subscribers[job_id].add(queue)
        try:
            yield queue
        finally:
            subs = self._subscribers.get(job_id)
            if subs is not None:
                subs.discard(queue)
                if not subs:
                    del self._subscribers[job_id]
                    self._latest.pop(job_id, None)

    def subscribers(self, job_id: str) -> int:
        return len(self._subscribers.get(job_id, ()))


class EventRelay:
    """Publishes on `bus` the events other processes store, as `store.listen` reports them:
    `on_event(job_id, last_event_id)` reads the job's new events (one read at a time per job,
    however many notifications arrive meanwhile) when the job has subscribers here."""

    def __init__(self, store: JobStore, bus: EventBus) -> None:
        self.store = store
        self.bus = bus
        self._wanted: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> bool:
        """Ask the store for notifications; False when it cannot give them (streams poll)."""
        return await self.store.listen(self.on_event)

    def on_event(self, job_id: str, last_event_id: int) -> None:
        if not self.bus.subscribers(job_id) or self.bus.latest(job_id) >= last_event_id:
            return  # nobody here follows it, or this replica published it already
        reading = job_id in self._wanted
        self._wanted[job_id] = max(last_event_id, self._wanted.get(job_id, 0))
        if not reading:
            task = asyncio.get_running_loop().create_task(self._relay(job_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _relay(self, job_id: str) -> None:
        try:
            while True:
                wanted = self._wanted[job_id]
                # Unknown start: the last event alone; a subscriber behind it sees the gap in
                # ids and re-reads the store itself.
                after = self.bus.latest(job_id) or wanted - 1
                self.bus.publish(await self.store.events_after(job_id, after))
                if self._wanted[job_id] <= wanted:
                    return
        except Exception as exc:
            log.warning("relaying job %s's events failed (%s); its streams poll the store",
                        job_id, exc)
        finally:
            self._wanted.pop(job_id, None)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def follow_events(
    store: JobStore, bus: EventBus, job_id: str, after_id: int = 0, *, poll_interval: float = 1.0
) -> AsyncIterator[JobEvent]:
    """Every event of the job with id > `after_id`, each once and in order, stored ones first,
    then live ones; ends after the job's final event. Raises `NotFoundError` for an unknown job
    (and ends quietly if the job expires while followed). Once following, a read the store
    cannot serve for now is retried, backing off from `poll_interval` to `_MAX_BACKOFF`."""
    # A finished job's final event is stored with its status: read the status, then the events.
    finished = (await store.get_job(job_id)).status.finished
    last = after_id
    with bus.subscribe(job_id) as queue:
        while True:
            # Replay from the store: the first time, after a gap, and on the fallback poll.
            while True:
                stored = await _retrying(partial(store.events_after, job_id, last), job_id,
                                         poll_interval)
                for event in stored:
                    last = event.id
                    yield event
                    if event.final:
                        return
                if len(stored) < 500:
                    break
            if finished:
                return  # the client already had the final event
            while True:
                try:
                    async with asyncio.timeout(poll_interval):
                        event = await queue.get()
                except TimeoutError:
                    try:
                        job = await _retrying(partial(store.get_job, job_id), job_id,
                                               poll_interval)
                        finished = job.status.finished
                    except NotFoundError:
                        return
                    break  # re-read the store
                if event.id <= last:
                    continue
                if event.id != last + 1:
                    break  # a gap: re-read the store
                last = event.id
                yield event
                if event.final:
                    return


async def _retrying(call: Callable[[], Awaitable[T]], job_id: str, first_delay: float) -> T:
    """`call()` until the store serves it (only `StorageFullError` is retried)."""
    delay = max(first_delay, 0.01)
    while True:
        try:
            return await call()
        except StorageFullError as exc:
            log.warning("following job %s: %s; reading again in %.2g s", job_id, exc, delay)
        await asyncio.sleep(delay)
        delay = min(_MAX_BACKOFF, delay * 2)
