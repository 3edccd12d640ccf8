"""`JobRunner`: runs queued jobs, keeping the engine full, and stores every result before
announcing it.

- Up to `MAX_CONCURRENT_JOBS` jobs run at once; the others wait `queued`, oldest first (jobs
  interrupted by a crash or a stop go first when the runner starts again).
- Items of all running jobs share `engine.capacity` slots: a new item starts as soon as one
  finishes (continuous refill, not fixed sequential batches). Jobs take slots in turn.
- Finished items go to one `ResultWriter` (`jobs/writer.py`) that stores them in group
  commits; every `BATCH_SIZE` results of a job become one `batch_complete` event, stored in the
  same transaction and then published. The last partial batch is sent before `complete`.
- Resuming a job submits only its items without a stored result, and first announces results
  stored but not yet announced when the process stopped.

Other components extend jobs through hooks passed to the runner (as arq passes them to its
`Worker`): `JobRunner(..., item_hooks=[...], finish_hooks=[...])`; see `jobs/extensions.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalserve.engines.base import Engine
from evalserve.errors import ConflictError, EvalserveError, InvalidInputError, error_body
from evalserve.jobs.events import EventBus
from evalserve.jobs.extensions import FinishHook, ItemHook, apply_item_hooks, finish_events
from evalserve.jobs.grading import Grader, JudgeKit
from evalserve.jobs.models import EventType, Job, JobStatus, ResultRow
from evalserve.jobs.progress import ProgressTracker
from evalserve.jobs.store import JobStore, NewEvent, PendingItem, StatusChange
from evalserve.jobs.writer import JobBatches, ResultWriter

__all__ = ["JobRunner", "RunnerConfig"]

log = logging.getLogger(__name__)

_ITEM_CHUNK = 256


@dataclass
class RunnerConfig:
    """The settings the runner reads (see `Settings` for their meaning)."""

    batch_size: int = 10
    max_concurrent_jobs: int = 5
    time_estimation_per_item: float = 2.0
    job_ttl_seconds: float = 3600
    cleanup_interval_seconds: float = 300

    @classmethod
    def from_settings(cls, settings: Any) -> RunnerConfig:
        return cls(batch_size=settings.batch_size,
                   max_concurrent_jobs=settings.max_concurrent_jobs,
                   time_estimation_per_item=settings.time_estimation_per_item,
                   job_ttl_seconds=settings.job_ttl_seconds,
                   cleanup_interval_seconds=settings.cleanup_interval_seconds)


@dataclass
class _Execution:
    """A job while this process runs it."""

    job: Job
    batches: JobBatches | None = None
    tasks: set[asyncio.Task] = field(default_factory=set)
    commits: set[asyncio.Future] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    failure: BaseException | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def last_batch(self) -> NewEvent | None:
        """The `batch_complete` event of the results not announced yet, if any."""
        return self.batches.take() if self.batches is not None else None

    def stop(self) -> None:
        self.stopping.set()
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()


class JobRunner:
    """Schedules jobs from `store` onto the engine that `engine_provider` returns once ready."""

    def __init__(
        self,
        store: JobStore,
        bus: EventBus,
        kit: JudgeKit,
        engine_provider: Callable[[], Awaitable[Engine]],
        config: RunnerConfig | None = None,
        *,
        item_hooks: Sequence[ItemHook] = (),
        finish_hooks: Sequence[FinishHook] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.bus = bus
        self.kit = kit
        self.config = config or RunnerConfig()
        self.item_hooks = tuple(item_hooks)
        self.finish_hooks = tuple(finish_hooks)
        self.clock = clock
        self._engine_provider = engine_provider
        self.engine: Engine | None = None
        self.engine_error: BaseException | None = None
        self._slots: asyncio.Semaphore | None = None
        self._running: dict[str, _Execution] = {}
        self._job_tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._writer = ResultWriter(store, bus, on_stored=self._count_stored)
        self._background: list[asyncio.Task] = []
        self._active = 0
        # Throughput over the current busy period (any job running), for first estimates.
        self._busy_since: float | None = None
        self._busy_items = 0
        self._last_seconds_per_item: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Requeue interrupted jobs, then start the scheduler, the writer and the sweeper."""
        requeued, _ = await self.store.requeue_interrupted()
        if requeued:
            log.info("resuming %d interrupted job(s)", requeued)
        self._active = await self.store.count_active()
        self._writer.start()
        self._background = [
            asyncio.create_task(self._schedule(), name="jobs-scheduler"),
            asyncio.create_task(self._sweep_forever(), name="jobs-sweeper"),
        ]

    async def close(self) -> None:
        """Stop running jobs where they are (they resume on the next start); results already
        graded are stored first."""
        for task in [*self._background, *self._job_tasks]:
            task.cancel()
        await asyncio.gather(*self._background, *self._job_tasks, return_exceptions=True)
        self._background = []
        await self._writer.close()

    def active_jobs(self) -> int:
        """Queued + running jobs (what `/health` reports)."""
        return self._active

    def notify_submitted(self) -> None:
        """A job was stored `queued`: count it and wake the scheduler."""
        self._active += 1
        self._wake.set()

    def seconds_per_item(self) -> float:
        """Wall seconds per finished item (any job) measured over the current or the last busy
        period; `TIME_ESTIMATION_PER_ITEM` before anything is measured."""
        if self._busy_since is not None and self._busy_items:
            return max(0.0, self.clock() - self._busy_since) / self._busy_items
        if self._last_seconds_per_item is not None:
            return self._last_seconds_per_item
        return self.config.time_estimation_per_item

    # -- scheduling --------------------------------------------------------------------------

    async def _schedule(self) -> None:
        try:
            self.engine = await self._engine_provider()
        except Exception as exc:
            self.engine_error = exc
            log.error("job runner stopped: the engine is unavailable (%s)", exc)
            return
        self._slots = asyncio.Semaphore(max(1, int(self.engine.capacity)))
        while True:
            self._wake.clear()
            async with self._lock:
                free = self.config.max_concurrent_jobs - len(self._running)
                if free > 0:
                    jobs = await self.store.runnable_jobs(free + len(self._running))
                    for job in jobs:
                        if job.id in self._running or free <= 0:
                            continue
                        free -= 1
                        ex = _Execution(job)
                        self._running[job.id] = ex
                        task = asyncio.create_task(self._run_job(ex), name=f"job-{job.id}")
                        self._job_tasks.add(task)
                        task.add_done_callback(self._job_tasks.discard)
            # asyncio.timeout, not wait_for: wait_for on 3.11 can lose a cancellation here.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._wake.wait()

    async def _acquire_slot(self, ex: _Execution) -> bool:
        """Wait for an engine slot; False when the job stops first."""
        assert self._slots is not None
        if not self._slots.locked():
            await self._slots.acquire()
            return True
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(ex.stopping.wait())
        try:
            await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not acquire.done():
                acquire.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acquire
        if acquire.done() and not acquire.cancelled():
            if ex.stopping.is_set():
                self._slots.release()
                return False
            return True
        return False

    async def _run_job(self, ex: _Execution) -> None:
        job = ex.job
        if self._busy_since is None:
            self._busy_since, self._busy_items = self.clock(), 0
        try:
            assert self.engine is not None
            grader = self.kit.grader(self.engine, job.rubric)
            now = self.clock()
            await self.store.commit(status=[StatusChange(job.id, JobStatus.RUNNING,
                                                         started_at=now)])
            job.status = JobStatus.RUNNING
            job.started_at = job.started_at or now
            tracker = ProgressTracker(job.total, job.completed, job.started_at,
                                      self.config.time_estimation_per_item, clock=self.clock)
            ex.batches = JobBatches(job, tracker, self.config.batch_size,
                                    await self.store.unannounced_results(job.id))
            after = -1
            while not ex.stopping.is_set():
                chunk = await self.store.pending_items(job.id, after, _ITEM_CHUNK)
                if not chunk:
                    break
                for pending in chunk:
                    after = pending.idx
                    if not await self._acquire_slot(ex):
                        break
                    task = asyncio.create_task(self._grade(ex, grader, pending))
                    ex.tasks.add(task)
                    task.add_done_callback(ex.tasks.discard)
            while ex.tasks:
                await asyncio.wait(set(ex.tasks))
            if ex.commits:
                await asyncio.gather(*list(ex.commits), return_exceptions=True)
            if ex.failure is not None:
                raise ex.failure
            if ex.cancelled:
                await self._finish(ex, JobStatus.CANCELLED)
            else:
                await self._complete(ex)
        except asyncio.CancelledError:
            ex.stop()
            await asyncio.gather(*list(ex.tasks), return_exceptions=True)
            raise
        except Exception as exc:
            log.exception("job %s failed", job.id)
            ex.stop()
            await asyncio.gather(*list(ex.tasks), return_exceptions=True)
            await asyncio.gather(*list(ex.commits), return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._finish(ex, JobStatus.FAILED, error=exc)
        finally:
            self._running.pop(job.id, None)
            if not self._running and self._busy_since is not None:
                if self._busy_items:
                    self._last_seconds_per_item = self.seconds_per_item()
                self._busy_since = None
            ex.done.set()
            self._wake.set()

    async def _grade(self, ex: _Execution, grader: Grader, pending: PendingItem) -> None:
        assert self._slots is not None and ex.batches is not None
        try:
            try:
                status, score, record = await grader.grade(pending.data, pending.idx)
            except InvalidInputError as exc:
                # The engine refused this item (e.g. too long): the item is unscored, not the job.
                status, score = "unscored", None
                record = grader.failed_record(pending.item_id, exc.message)
            finally:
                self._slots.release()
            record = await apply_item_hooks(self.item_hooks, ex.job, pending.data, record)
            row = ResultRow(ex.job.id, pending.idx, pending.item_id, status,
                            score if status == "scored" else None, record)
            future = self._writer.write(ex.batches, row)
            ex.commits.add(future)
            future.add_done_callback(ex.commits.discard)
            await asyncio.shield(future)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if ex.failure is None:
                ex.failure = exc
            ex.stop()

    # -- storing and announcing --------------------------------------------------------------

    def _count_stored(self, n: int) -> None:
        self._busy_items += n

    async def _publish(self, *args: Any, **kwargs: Any) -> None:
        self.bus.publish(await self.store.commit(*args, **kwargs))

    def _summary(self, job: Job, status: JobStatus) -> dict[str, Any]:
        return {"job_id": job.id, "status": status.value, "total": job.total,
                "completed": job.completed, "scored": job.scored, "unscored": job.unscored,
                "mean_score": job.mean_score,
                "elapsed_seconds": round(job.elapsed(self.clock()), 3)}

    async def _complete(self, ex: _Execution) -> None:
        last = ex.last_batch()
        if last is not None:
            await self._publish(events=[last])
        hook_events = await self._run_finish_hooks(ex.job)
        await self._finish(ex, JobStatus.COMPLETED, extra_events=hook_events)

    async def _finish(self, ex: _Execution, status: JobStatus, *,
                      error: BaseException | None = None,
                      extra_events: list[NewEvent] | None = None) -> None:
        job = ex.job
        events = list(extra_events or [])
        last = ex.last_batch()
        if last is not None:
            events.append(last)
        job.finished_at = self.clock()
        job.status = status
        data = self._summary(job, status)
        if status is JobStatus.FAILED:
            body = error_body(error or EvalserveError("the job failed"))
            job.error = body
            final = NewEvent(job.id, EventType.ERROR, {"error": body, **data}, final=True)
        else:
            kind = EventType.COMPLETE if status is JobStatus.COMPLETED else EventType.CANCELLED
            final = NewEvent(job.id, kind, data, final=True)
        await self._publish(events=[*events, final], status=[StatusChange(
            job.id, status, finished_at=job.finished_at, error=job.error)])
        self._active = max(0, self._active - 1)

    async def _run_finish_hooks(self, job: Job) -> list[NewEvent]:
        if not self.finish_hooks:
            return []
        records: list[dict[str, Any]] = []
        after = -1
        while True:
            page = await self.store.records(job.id, after, 5000)
            if not page:
                break
            records.extend(r for _, r in page)
            after = page[-1][0]
        return await finish_events(self.finish_hooks, job, records)

    # -- cancel and expiry -------------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job: in-flight items are aborted, results stored so far
        stay readable, subscribers get a final `cancelled` event. 409 for a finished job."""
        async with self._lock:
            ex = self._running.get(job_id)
            if ex is None:
                job = await self.store.get_job(job_id)
                if job.status.finished:
                    raise ConflictError(f"job {job_id} is already {job.status.value}; "
                                        "only queued or running jobs can be cancelled")
                await self._finish(_Execution(job), JobStatus.CANCELLED)
                return await self.store.get_job(job_id)
            ex.cancelled = True
            ex.stop()
        await ex.done.wait()
        return await self.store.get_job(job_id)

    async def sweep(self) -> list[str]:
        """Delete jobs finished more than `JOB_TTL_SECONDS` ago."""
        deleted = await self.store.delete_expired(self.clock() - self.config.job_ttl_seconds)
        if deleted:
            log.info("expired %d job(s)", len(deleted))
        return deleted

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("the job cleanup failed; retrying at the next interval")
            await asyncio.sleep(self.config.cleanup_interval_seconds)
