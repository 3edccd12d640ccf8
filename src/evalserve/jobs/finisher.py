"""`JobFinisher`: stores and announces the end of a job (`complete`, `cancelled`, `error`).

A completed job's report (`evalserve.judge.report.job_report` of all its records: agreement
with human grades, pairwise, jury and sampling summaries) is computed once, off the event
loop (`jobs/reports.py`: records read in small pages, the report in a worker thread), stored
with the job and carried by the `complete` event as `"report"`.

The end (the last partial batch, finish-hook events, the final event and the status change) is
one commit through `ResultWriter.announce` (retried there; the last batch counts as announced
only once stored). If the store still fails, the end is kept and retried at every scheduler
pass (`store_unfinished`); the job stays `running` in the store meanwhile, so a restart
resumes it (its results are stored: it only announces and ends) instead of leaving it
`running` for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from evalserve.errors import EvalserveError, error_body
from evalserve.jobs.events import EventBus
from evalserve.jobs.execution import Execution
from evalserve.jobs.extensions import FinishHook, finish_events
from evalserve.jobs.models import EventType, Job, JobStatus
from evalserve.jobs.progress import ProgressTracker
from evalserve.jobs.reports import compute_report, job_records
from evalserve.jobs.store import JobStore, NewEvent, StatusChange
from evalserve.jobs.writer import JobBatches, ResultWriter

__all__ = ["JobFinisher", "summary"]

log = logging.getLogger(__name__)


def summary(job: Job, status: JobStatus, now: float) -> dict[str, Any]:
    """The data of a job's final event: status and counts `{scored, unscored, errors}`."""
    return {"job_id": job.id, "status": status.value, "total": job.total,
            "completed": job.completed, "scored": job.scored, "unscored": job.unscored,
            "errors": job.errors, "mean_score": job.mean_score,
            "elapsed_seconds": round(job.elapsed(now), 3)}


class JobFinisher:
    """Ends jobs on `store`; `on_end()` is called once per job whose end is stored."""

    def __init__(self, store: JobStore, bus: EventBus, writer: ResultWriter, *,
                 finish_hooks: Sequence[FinishHook], clock: Callable[[], float],
                 on_end: Callable[[], None]) -> None:
        self.store = store
        self.bus = bus
        self.writer = writer
        self.finish_hooks = tuple(finish_hooks)
        self.clock = clock
        self.on_end = on_end
        self.unfinished: dict[str, tuple[JobBatches | None, list[NewEvent], StatusChange]] = {}
        """Ends not stored yet, by job id."""

    async def complete(self, ex: Execution) -> None:
        """Announce the last batch, compute the job's report, run the finish hooks, then end
        the job `completed` (the report stored with it and carried by `complete`)."""
        try:
            await self.writer.announce(ex.batches)
        except Exception:
            log.exception("announcing job %s's last batch failed; it goes with the end",
                          ex.job.id)
        records = await job_records(self.store, ex.job.id)
        report = ex.job.report = await compute_report(ex.job, records)
        hook_events = await finish_events(self.finish_hooks, ex.job, records) \
            if self.finish_hooks else []
        await self.finish(ex, JobStatus.COMPLETED, extra_events=hook_events, report=report)

    async def finish(self, ex: Execution, status: JobStatus, *,
                     error: BaseException | None = None,
                     extra_events: list[NewEvent] | None = None, park: bool = True,
                     report: dict[str, Any] | None = None) -> None:
        """Store and announce the job's end (with its `report`, which the final event
        carries). If the store still fails after the writer's retries, the end is kept for
        `store_unfinished`; without `park` (no batches to announce), one commit is tried and
        its error raised."""
        job = ex.job
        events = list(extra_events or [])
        if ex.batches is None:  # not started in this process: the counters as stored
            await self._refresh_counts(job)
        job.finished_at = self.clock()
        job.status = status
        data = summary(job, status, self.clock())
        if status is JobStatus.FAILED:
            body = error_body(error or EvalserveError("the job failed"))
            job.error = body
            final = NewEvent(job.id, EventType.ERROR, {"error": body, **data}, final=True)
        else:
            kind = EventType.COMPLETE if status is JobStatus.COMPLETED else EventType.CANCELLED
            if report is not None:
                data["report"] = report
            final = NewEvent(job.id, kind, data, final=True)
        events.append(final)
        change = StatusChange(job.id, status, finished_at=job.finished_at, error=job.error,
                              report=report)
        if not park:  # a caller waits (cancelling a queued job): one try, its error is theirs
            self.bus.publish(await self.store.commit(events=events, status=[change]))
            self.on_end()
            return
        try:
            await self.writer.announce(ex.batches, events, [change])
        except Exception:
            log.exception("storing the end of job %s failed; retried at every scheduler pass "
                          "(else the job is resumed at the next start)", job.id)
            self.unfinished[job.id] = (ex.batches, events, change)
            return
        self.on_end()

    async def store_unfinished(self) -> None:
        """Store the ends whose commit failed (raises while the store still fails)."""
        for job_id, (batches, events, change) in list(self.unfinished.items()):
            plan = batches.plan(flush=True) if batches is not None else None
            planned = plan.events if plan is not None else []
            self.bus.publish(await self.store.commit(events=[*planned, *events],
                                                     status=[change]))
            if batches is not None and plan is not None:
                batches.apply(plan)
            del self.unfinished[job_id]
            self.on_end()
            log.info("the end of job %s is stored", job_id)

    async def fail_poisoned(self, job: Job, max_attempts: int, batch_size: int) -> None:
        """Fail a job found `running` at start after `max_attempts` starts: it may be what
        stops the process, so it is not resumed again. Results stored but not announced yet
        go in a last batch first."""
        log.warning("job %s was interrupted %d times; failing it instead of resuming it",
                    job.id, job.attempts)
        error = EvalserveError(
            f"the job was interrupted {job.attempts} times (MAX_JOB_ATTEMPTS={max_attempts}) "
            "and is failed instead of resumed, in case it is what stops the server; its "
            "stored results stay readable", code="too_many_attempts")
        ex = Execution(job)
        tracker = ProgressTracker(job.total, job.completed, job.started_at or self.clock(),
                                  0.0, clock=self.clock)
        ex.batches = JobBatches(job, tracker, batch_size,
                                await self.store.unannounced_results(job.id))
        await self.finish(ex, JobStatus.FAILED, error=error)

    async def _refresh_counts(self, job: Job) -> None:
        """The counters as stored (they count `error` items apart)."""
        try:
            stored = await self.store.get_job(job.id)
        except Exception:
            log.warning("could not re-read job %s's counters", job.id, exc_info=True)
            return
        job.completed, job.scored, job.unscored = stored.completed, stored.scored, stored.unscored
        job.errors, job.score_sum = stored.errors, stored.score_sum
