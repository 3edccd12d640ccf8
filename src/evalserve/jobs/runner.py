"""`JobRunner`: runs queued jobs, keeping the engine full, and stores every result before
announcing it.

- Up to `MAX_CONCURRENT_JOBS` jobs run at once, and an owner with nothing running always gets
  one started (`jobs/admission.py`); the others wait `queued`, round-robin across owners (jobs
  interrupted by a crash or a stop go first). A job runs only while this replica holds its
  lease (`jobs/leases.py`), so replicas on one store never run a job twice; one whose replica
  died is taken over when its lease runs out, or failed after `MAX_JOB_ATTEMPTS` such deaths.
- Items of all running jobs share `engine.capacity` slots: a new item starts as soon as one
  finishes (continuous refill, not fixed sequential batches). Slots go round-robin across
  owners, then across their jobs (`jobs/slots.py`).
- An item fails alone: transient engine errors are retried with backoff (`jobs/retry.py`),
  then the item is stored with `status: "error"`. Only a job-level cause fails the job: the
  rubric cannot be built, the engine is gone, the store keeps failing.
- The scheduler survives store errors (it logs, backs off, retries); a job's final commit is
  retried, and if it still fails it is retried at every scheduler pass (and the job, still
  `running` in the store, is resumed at the next start).
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
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from evalserve.engines.base import Engine
from evalserve.errors import ConflictError, EngineUnavailableError, StorageFullError
from evalserve.jobs.admission import admit
from evalserve.jobs.config import RunnerConfig
from evalserve.jobs.counts import ActiveCount
from evalserve.jobs.events import EventBus
from evalserve.jobs.execution import Execution
from evalserve.jobs.extensions import FinishHook, ItemHook, apply_item_hooks
from evalserve.jobs.finisher import JobFinisher
from evalserve.jobs.grading import Grader, JudgeKit
from evalserve.jobs.leases import Leases
from evalserve.jobs.models import Job, JobStatus, ResultRow
from evalserve.jobs.progress import ProgressTracker
from evalserve.jobs.retry import RetryPolicy
from evalserve.jobs.slots import FairSlots
from evalserve.jobs.spans import traced_engine, traced_item, traced_job
from evalserve.jobs.store import JobStore, PendingItem
from evalserve.jobs.writer import JobBatches, ResultWriter
from evalserve.redact import redact_text

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)

_ITEM_CHUNK = 256
#: Queued jobs read past the free room, to find owners with nothing running.
_OWNER_LOOKAHEAD = 64
#: The scheduler's backoff after store errors stops doubling at this attempt (~16 s).
_MAX_BACKOFF_STEP = 6

#: How often a cancel waiting for the job to end checks whether the store can write.
_CANCEL_CHECK_SECONDS = 1.0


class JobRunner:
    """Schedules jobs from `store` onto the engine that `engine_provider` returns once ready.

    `sleep` and `rand` drive every backoff (tests pass instant ones); `tracer`: jobs/spans.py"""

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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        tracer: Tracer | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.kit = kit
        self.config = config or RunnerConfig()
        self.item_hooks = tuple(item_hooks)
        self.finish_hooks = tuple(finish_hooks)
        self.clock = clock
        self.tracer = tracer
        cfg = self.config
        self.item_retry = RetryPolicy(cfg.item_retries, cfg.item_retry_backoff_seconds,
                                      sleep, rand)
        self.store_retry = RetryPolicy(cfg.store_retries, cfg.store_retry_backoff_seconds,
                                       sleep, rand)
        self._engine_provider = engine_provider
        self.engine: Engine | None = None
        self.engine_error: BaseException | None = None
        self.slots: FairSlots | None = None
        self._running: dict[str, Execution] = {}
        self._job_tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._writer = ResultWriter(store, bus, on_stored=self._count_stored)
        self.finisher = JobFinisher(store, bus, self._writer, finish_hooks=finish_hooks,
                                    clock=clock, on_end=self._ended)
        self._background: list[asyncio.Task] = []
        self.leases = Leases(store, cfg.replica_id, cfg.job_lease_seconds, clock)
        self._active = ActiveCount(store)
        # Throughput over the current busy period (any job running), for first estimates.
        self._busy_since: float | None = None
        self._busy_items = 0
        self._last_seconds_per_item: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the scheduler (it claims queued jobs and those whose replica died), the lease
        renewals, the writer and the sweeper."""
        await self._active.refresh()
        self._writer.start()
        self._background = [
            asyncio.create_task(self._schedule(), name="jobs-scheduler"),
            asyncio.create_task(self._sweep_forever(), name="jobs-sweeper"),
            asyncio.create_task(self.leases.keep(self._held, self._lost), name="jobs-leases"),
            asyncio.create_task(self._active.keep(), name="jobs-count"),
        ]

    async def close(self) -> None:
        """Stop running jobs where they are; results already graded are stored first, then
        their leases are released: `queued` again at once, for any replica, and a clean stop
        does not count against `MAX_JOB_ATTEMPTS` (a process that dies does)."""
        running = self._held()
        for task in [*self._background, *self._job_tasks]:
            task.cancel()
        await asyncio.gather(*self._background, *self._job_tasks, return_exceptions=True)
        self._background = []
        await self._writer.close()
        try:
            released = await self.leases.release(running)  # not those that ended meanwhile
            if released:
                log.info("released %d running job(s) for another replica", released)
        except Exception:  # they stay `running`: taken over once their leases run out
            log.exception("could not release %d running job(s) at stop", len(running))

    def active_jobs(self) -> int:
        """Queued + running jobs of every replica (`/health`), a second old at most."""
        return self._active.value()

    def notify_submitted(self) -> None:
        """A job was stored `queued` (new or retried): count it and wake the scheduler."""
        self._active.add(1)
        self._wake.set()

    async def check_engine(self) -> None:
        """`EngineUnavailableError` when the engine failed to load, also in the moment after
        the failure before the scheduler has seen it: while the engine is not known yet, the
        provider is asked without waiting (still loading: fine, jobs queue meanwhile)."""
        error = self.engine_error
        if error is None and self.engine is None:
            try:
                async with asyncio.timeout(0):
                    await self._engine_provider()
            except TimeoutError:
                return
            except Exception as exc:
                error = exc
        if error is not None:
            raise EngineUnavailableError(
                f"the model failed to load ({redact_text(str(error))}); jobs cannot run")

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
        self.slots = FairSlots(self.engine.capacity)
        failures = 0
        while True:
            self._wake.clear()
            try:
                await self._schedule_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("the job scheduler failed (%d in a row); retrying after a "
                              "backoff", failures)
                await self.store_retry.pause(min(failures, _MAX_BACKOFF_STEP))
                continue
            # asyncio.timeout, not wait_for: wait_for on 3.11 can lose a cancellation here.
            # Jobs released or left by other replicas are found by polling.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(5.0, self.leases.renew_interval)):
                    await self._wake.wait()

    async def _schedule_once(self) -> None:
        await self.finisher.store_unfinished()
        async with self._lock:
            limit = self.config.max_concurrent_jobs
            candidates = await self.store.runnable_jobs(
                max(0, limit - len(self._running)) + len(self._running) + _OWNER_LOOKAHEAD,
                now=self.clock())
            chosen = admit(candidates, [ex.job for ex in self._running.values()], limit)
            if not chosen:
                return
            claims = await self.leases.claim([j.id for j in chosen],
                                             self.config.max_job_attempts)
            for job in claims.poisoned:
                await self.finisher.fail_poisoned(job, self.config.max_job_attempts,
                                                  self.config.batch_size)
            for job in claims.jobs:
                ex = Execution(job)
                self._running[job.id] = ex
                task = asyncio.create_task(traced_job(self.tracer, ex, self._run_job(ex)),
                                           name=f"job-{job.id}")
                self._job_tasks.add(task)
                task.add_done_callback(self._job_tasks.discard)

    async def _run_job(self, ex: Execution) -> None:
        job = ex.job
        if self._busy_since is None:
            self._busy_since, self._busy_items = self.clock(), 0
        try:
            assert self.engine is not None and self.slots is not None
            grader = self.kit.grader_for(traced_engine(self.tracer, self.engine), job)
            tracker = ProgressTracker(job.total, job.completed, job.started_at,
                                      self.config.time_estimation_per_item, clock=self.clock)
            ex.batches = JobBatches(job, tracker, self.config.batch_size, await self._read(
                "reading unannounced results", lambda: self.store.unannounced_results(job.id)))
            # Twice the slots: items being stored or backing off leave the job waiters for
            # its fair share.
            ex.room = asyncio.Semaphore(2 * self.slots.capacity)
            after = -1
            while not ex.stopping.is_set():
                chunk = await self._read("reading pending items", functools.partial(
                    self.store.pending_items, job.id, after, _ITEM_CHUNK))
                if not chunk:
                    break
                for pending in chunk:
                    after = pending.idx
                    # while the store cannot write (a full disk) the job pauses here
                    if not await ex.until(self._writer.wait_writable()):
                        break
                    if not await ex.wait_room():
                        break
                    task = asyncio.create_task(traced_item(self.tracer, job, pending,
                                                           self._grade(ex, grader, pending)))
                    ex.tasks.add(task)
                    task.add_done_callback(ex.tasks.discard)
            while ex.tasks:
                await asyncio.wait(set(ex.tasks))
            if ex.commits:
                await asyncio.gather(*list(ex.commits), return_exceptions=True)
            if ex.lost:
                return  # whoever holds the job now ends it
            if ex.failure is not None:
                raise ex.failure
            if ex.cancelled:
                await self.finisher.finish(ex, JobStatus.CANCELLED)
            else:
                await self.finisher.complete(ex)
        except asyncio.CancelledError:
            ex.stop()
            await asyncio.gather(*list(ex.tasks), return_exceptions=True)
            raise
        except Exception as exc:
            ex.stop()
            await asyncio.gather(*list(ex.tasks), return_exceptions=True)
            await asyncio.gather(*list(ex.commits), return_exceptions=True)
            if ex.lost:
                return
            log.exception("job %s failed", job.id)
            await self.finisher.finish(ex, JobStatus.FAILED, error=exc)
        finally:
            self._running.pop(job.id, None)
            if self.slots is not None:
                self.slots.forget(job.id)
            if not self._running and self._busy_since is not None:
                if self._busy_items:
                    self._last_seconds_per_item = self.seconds_per_item()
                self._busy_since = None
            ex.done.set()
            self._wake.set()

    async def _read(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        return await self.store_retry.run(what, fn)

    async def _grade(self, ex: Execution, grader: Grader, pending: PendingItem) -> ResultRow | None:
        assert ex.batches is not None and ex.room is not None
        try:
            assert self.slots is not None
            status, score, record = await ex.grade(grader, pending, self.slots,
                                                   self.item_retry)
            record = await apply_item_hooks(self.item_hooks, ex.job, pending.data, record)
            row = ResultRow(ex.job.id, pending.idx, pending.item_id, status,
                            score if status == "scored" else None, record)
            future = self._writer.write(ex.batches, row)
            ex.commits.add(future)
            future.add_done_callback(ex.commits.discard)
            await asyncio.shield(future)
            return row
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # job-level: the engine is gone or the store failed
            if ex.failure is None:
                ex.failure = exc
            ex.stop()
        finally:
            ex.room.release()

    # -- storing and announcing --------------------------------------------------------------

    def _count_stored(self, n: int) -> None:
        self._busy_items += n

    def _ended(self) -> None:
        self._active.add(-1)

    def _held(self) -> list[str]:
        """Jobs whose leases this replica keeps: running ones, and those with an end unstored."""
        return [*(j for j, ex in self._running.items() if not ex.lost),
                *self.finisher.unfinished]

    def _lost(self, job_id: str) -> None:
        ex = self._running.get(job_id)
        if ex is not None:
            ex.lost = True
            ex.stop()

    # -- cancel and expiry -------------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job: in-flight items are aborted, results stored so far
        stay readable, subscribers get a final `cancelled` event. 409 for a finished job."""
        async with self._lock:
            if job_id in self.finisher.unfinished:
                raise ConflictError(f"job {job_id} has ended; its final state is being stored")
            ex = self._running.get(job_id)
            if ex is None:
                job = await self.store.get_job(job_id)
                if job.status.finished:
                    raise ConflictError(f"job {job_id} is already {job.status.value}; "
                                        "only queued or running jobs can be cancelled")
                await self.finisher.finish(Execution(job), JobStatus.CANCELLED, park=False)
                return await self.store.get_job(job_id)
            ex.cancelled = True
            ex.stop()
        while not ex.done.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CANCEL_CHECK_SECONDS):
                    await ex.done.wait()
            error = self._writer.storage_error
            if not ex.done.is_set() and error is not None:
                # The end cannot be stored now; answering beats hanging until space is back.
                raise StorageFullError(
                    f"job {job_id} is cancelled, but the job store cannot write "
                    f"({error.message}); its `cancelled` state is stored once it can") from None
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
