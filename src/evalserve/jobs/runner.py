"""`JobRunner`: runs queued jobs, keeping the engine full, and stores every result before
announcing it.

- Up to `MAX_CONCURRENT_JOBS` jobs run at once; the others wait `queued`, oldest first (jobs
  interrupted by a crash or a stop go first when the runner starts again).
- Items of all running jobs share `engine.capacity` slots: a new item starts as soon as one
  finishes (continuous refill, not fixed sequential batches). Jobs take slots in turn.
- Finished items go to one writer that stores them in group commits; every `BATCH_SIZE`
  results of a job become one `batch_complete` event, stored in the same transaction and then
  published. The last partial batch is sent before `complete`.
- Resuming a job submits only its items without a stored result, and first announces results
  stored but not yet announced when the process stopped.

Hooks for other components (register at import or start-up):

- `ITEM_HOOKS`: `hook(item, record) -> dict` (or an awaitable of it): extra fields merged into
  each result record before it is stored (e.g. metrics against the item's `reference`).
  `current_job.get()` gives the job (its `options.metrics`, `options.track`). A failing hook
  adds `{"hook_errors": [...]}` to the record instead of failing the item.
- `FINISH_HOOKS`: `async hook(job, records) -> list[{"event": type, "data": {...}}]`, run when a
  job completes, after its last result; the events they return are sent before `complete`. A
  failing hook becomes an `error` event (`{"error": {...}, "hook": name}`); the job completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from evalserve.engines.base import Engine
from evalserve.errors import ConflictError, EvalserveError, InvalidInputError
from evalserve.jobs.events import EventBus
from evalserve.jobs.grading import Grader, JudgeKit
from evalserve.jobs.models import EventType, Job, JobStatus, ResultRow
from evalserve.jobs.progress import ProgressTracker
from evalserve.jobs.store import JobStore, NewEvent, PendingItem, StatusChange

__all__ = [
    "JobRunner",
    "RunnerConfig",
    "ITEM_HOOKS",
    "FINISH_HOOKS",
    "ItemHook",
    "FinishHook",
    "current_job",
    "error_body",
]

log = logging.getLogger(__name__)

ItemHook = Callable[[dict[str, Any], dict[str, Any]], "dict[str, Any] | Awaitable[dict[str, Any]]"]
FinishHook = Callable[[Job, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]

#: Per-item hooks, run in order on every result record (see the module docstring).
ITEM_HOOKS: list[ItemHook] = []
#: Per-job hooks, run in order when a job completes (see the module docstring).
FINISH_HOOKS: list[FinishHook] = []
#: The job an item hook is running for.
current_job: ContextVar[Job] = ContextVar("evalserve_current_job")

_ITEM_CHUNK = 256
_WRITE_GROUP = 2048


def error_body(exc: BaseException) -> dict[str, Any]:
    """The HTTP envelope's `error` object for an exception (used by `error` events)."""
    if isinstance(exc, EvalserveError):
        return {"message": exc.message, "type": exc.type, "code": exc.code}
    return {"message": f"{type(exc).__name__}: {exc}", "type": "server_error",
            "code": "internal_error"}


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
    tracker: ProgressTracker | None = None
    buffer: list[ResultRow] = field(default_factory=list)
    tasks: set[asyncio.Task] = field(default_factory=set)
    commits: set[asyncio.Future] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    failure: BaseException | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

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
        item_hooks: list[ItemHook] | None = None,
        finish_hooks: list[FinishHook] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.bus = bus
        self.kit = kit
        self.config = config or RunnerConfig()
        self.item_hooks = ITEM_HOOKS if item_hooks is None else item_hooks
        self.finish_hooks = FINISH_HOOKS if finish_hooks is None else finish_hooks
        self.clock = clock
        self._engine_provider = engine_provider
        self.engine: Engine | None = None
        self.engine_error: BaseException | None = None
        self._slots: asyncio.Semaphore | None = None
        self._running: dict[str, _Execution] = {}
        self._job_tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._writes: asyncio.Queue[tuple[_Execution, ResultRow, asyncio.Future]] = \
            asyncio.Queue()
        self._background: list[asyncio.Task] = []
        self._active = 0
        # Throughput over the current busy period (any job running), for first estimates.
        self._busy_since: float | None = None
        self._busy_items = 0
        self._last_seconds_per_item: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Requeue interrupted jobs, then start the scheduler, the writer and the sweeper."""
        requeued = await self.store.requeue_interrupted()
        if requeued:
            log.info("resuming %d interrupted job(s)", requeued)
        self._active = await self.store.count_active()
        self._background = [
            asyncio.create_task(self._writer(), name="jobs-writer"),
            asyncio.create_task(self._schedule(), name="jobs-scheduler"),
            asyncio.create_task(self._sweep_forever(), name="jobs-sweeper"),
        ]

    async def close(self) -> None:
        """Stop running jobs where they are (they resume on the next start); results already
        graded are stored first."""
        for task in self._background[1:]:
            task.cancel()
        for task in list(self._job_tasks):
            task.cancel()
        await asyncio.gather(*self._background[1:], *self._job_tasks, return_exceptions=True)
        await self._writes.join()
        if self._background:
            self._background[0].cancel()
            await asyncio.gather(self._background[0], return_exceptions=True)
        self._background = []

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
            ex.tracker = ProgressTracker(job.total, job.completed, job.started_at,
                                         self.config.time_estimation_per_item, clock=self.clock)
            ex.buffer = await self.store.unannounced_results(job.id)
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
        assert self._slots is not None
        current_job.set(ex.job)
        try:
            try:
                status, score, record = await grader.grade(pending.data, pending.idx)
            except InvalidInputError as exc:
                # The engine refused this item (e.g. too long): the item is unscored, not the job.
                status, score = "unscored", None
                record = grader.failed_record(pending.item_id, exc.message)
            finally:
                self._slots.release()
            record = await self._apply_item_hooks(pending.data, record)
            row = ResultRow(ex.job.id, pending.idx, pending.item_id, status,
                            score if status == "scored" else None, record)
            future = asyncio.get_running_loop().create_future()
            ex.commits.add(future)
            future.add_done_callback(ex.commits.discard)
            self._writes.put_nowait((ex, row, future))
            await asyncio.shield(future)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if ex.failure is None:
                ex.failure = exc
            ex.stop()

    async def _apply_item_hooks(self, item: dict[str, Any], record: dict[str, Any]) -> dict:
        for hook in self.item_hooks:
            try:
                extra = hook(item, record)
                if inspect.isawaitable(extra):
                    extra = await extra
                if extra:
                    record = {**record, **extra}
            except Exception as exc:
                name = getattr(hook, "__name__", repr(hook))
                log.warning("item hook %s failed: %s", name, exc)
                record = {**record,
                          "hook_errors": [*record.get("hook_errors", []), f"{name}: {exc}"]}
        return record

    # -- storing and announcing --------------------------------------------------------------

    def _batch_event(self, ex: _Execution) -> NewEvent:
        rows, ex.buffer = ex.buffer, []
        ex.job.batches += 1
        assert ex.tracker is not None
        return NewEvent(
            ex.job.id, EventType.BATCH,
            {"batch_number": ex.job.batches, "results": [r.record for r in rows],
             "progress": ex.tracker.snapshot()},
            announces=[r.idx for r in rows],
        )

    async def _writer(self) -> None:
        while True:
            group = [await self._writes.get()]
            while not self._writes.empty() and len(group) < _WRITE_GROUP:
                group.append(self._writes.get_nowait())
            try:
                await self._write_group(group)
            except Exception as exc:  # never let the writer die: its items' jobs fail instead
                log.exception("writing %d result(s) failed", len(group))
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
            finally:
                for _ in group:
                    self._writes.task_done()

    async def _write_group(self, group: list[tuple[_Execution, ResultRow, asyncio.Future]]) -> None:
        events: list[NewEvent] = []
        for ex, row, _ in group:
            assert ex.tracker is not None
            ex.tracker.add(1)
            ex.buffer.append(row)
            if len(ex.buffer) >= self.config.batch_size:
                events.append(self._batch_event(ex))
        try:
            stored = await self.store.commit([row for _, row, _ in group], events)
        except Exception as exc:
            log.exception("storing %d result(s) failed", len(group))
            for _, _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        self._busy_items += len(group)
        for ex, row, future in group:
            job = ex.job
            job.completed += 1
            if row.status == "scored" and row.score is not None:
                job.scored += 1
                job.score_sum += float(row.score)
            else:
                job.unscored += 1
            if not future.done():
                future.set_result(None)
        self.bus.publish(stored)

    async def _publish(self, *args: Any, **kwargs: Any) -> None:
        self.bus.publish(await self.store.commit(*args, **kwargs))

    def _summary(self, job: Job, status: JobStatus) -> dict[str, Any]:
        return {"job_id": job.id, "status": status.value, "total": job.total,
                "completed": job.completed, "scored": job.scored, "unscored": job.unscored,
                "mean_score": job.mean_score,
                "elapsed_seconds": round(job.elapsed(self.clock()), 3)}

    async def _complete(self, ex: _Execution) -> None:
        if ex.buffer:
            await self._publish(events=[self._batch_event(ex)])
        hook_events = await self._run_finish_hooks(ex.job)
        await self._finish(ex, JobStatus.COMPLETED, extra_events=hook_events)

    async def _finish(self, ex: _Execution, status: JobStatus, *,
                      error: BaseException | None = None,
                      extra_events: list[NewEvent] | None = None) -> None:
        job = ex.job
        events = list(extra_events or [])
        if ex.buffer and ex.tracker is not None:
            events.append(self._batch_event(ex))
        job.finished_at = self.clock()
        job.status = status
        data = self._summary(job, status)
        if status is JobStatus.FAILED:
            body = error_body(error) if error else {"message": "the job failed",
                                                    "type": "server_error",
                                                    "code": "internal_error"}
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
        events: list[NewEvent] = []
        for hook in self.finish_hooks:
            name = getattr(hook, "__name__", repr(hook))
            try:
                for spec in await hook(job, records) or []:
                    events.append(NewEvent(job.id, str(spec.get("event", "message")),
                                           dict(spec.get("data") or {})))
            except Exception as exc:
                log.warning("finish hook %s failed for job %s: %s", name, job.id, exc)
                events.append(NewEvent(job.id, EventType.ERROR,
                                       {"error": error_body(exc), "hook": name,
                                        "job_id": job.id, "status": job.status.value}))
        return events

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
