"""`JobService`: the job API used by the HTTP routes and the CLI (submit, follow, read, cancel,
retry).

Every job has an `owner` (the submitting caller's key id; None in single-user mode). Reads and
changes take a `visible_to` owner: a job of anyone else is `NotFoundError`, worded like a job
that does not exist, so ids cannot be probed; `visible_to=None` (admins, single-user mode, the
CLI) sees every job. A caller may have at most `max_queued_jobs` queued jobs.

The server builds it (with its hooks) in `evalserve.server.components`; the CLI builds its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evalserve.engines.base import Engine
from evalserve.errors import InvalidInputError, NotFoundError, RateLimitError
from evalserve.jobs.backend import database_path, store_from_settings
from evalserve.jobs.config import RunnerConfig
from evalserve.jobs.events import EventBus, EventRelay, follow_events
from evalserve.jobs.export import FORMATS, export_results
from evalserve.jobs.extensions import FinishHook, ItemHook
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.models import EventType, Job, JobEvent, JobOptions, JobStatus
from evalserve.jobs.panel import panel_options
from evalserve.jobs.progress import estimate_seconds
from evalserve.jobs.runner import JobRunner
from evalserve.jobs.store import JobStore, job_not_found
from evalserve.jobs.validation import validate_items
from evalserve.tracing import current_traceparent

__all__ = ["JobService", "Submission", "database_path"]


def superseded(event: JobEvent) -> bool:
    """A final event of an earlier run of a retried job (stored, but no longer final)."""
    if event.final:
        return False
    if event.type in (EventType.COMPLETE, EventType.CANCELLED):
        return True
    return (event.type == EventType.ERROR and "hook" not in event.data
            and event.data.get("status") == JobStatus.FAILED.value)


@dataclass
class Submission:
    """A stored job and its first time estimate."""

    job: Job
    estimated_time_seconds: int


class JobService:
    """Jobs over one store, one runner and one event bus.

    `item_hooks` and `finish_hooks` go to the runner (see `evalserve.jobs.extensions`);
    `runner_options` are further `JobRunner` keyword arguments (e.g. `clock`, `sleep`);
    `max_queued_jobs`: most queued jobs per owner (None: no cap).
    """

    def __init__(
        self,
        store: JobStore,
        kit: JudgeKit,
        engine: Engine,
        engine_provider: Callable[[], Awaitable[Engine]],
        config: RunnerConfig | None = None,
        *,
        max_items: int = 100_000,
        max_field_chars: int = 20_000,
        poll_interval: float = 1.0,
        max_queued_jobs: int | None = None,
        item_hooks: Sequence[ItemHook] = (),
        finish_hooks: Sequence[FinishHook] = (),
        runner_options: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.kit = kit
        self.engine = engine
        self.bus = EventBus()
        self.relay = EventRelay(store, self.bus)
        self.runner = JobRunner(store, self.bus, kit, engine_provider, config,
                                item_hooks=item_hooks, finish_hooks=finish_hooks,
                                **(runner_options or {}))
        self.max_items = max_items
        self.max_field_chars = max_field_chars
        self.poll_interval = poll_interval
        self.max_queued_jobs = max_queued_jobs
        self._submitting: dict[str | None, int] = {}

    @classmethod
    def from_settings(cls, settings: Any, engine: Engine,
                      engine_provider: Callable[[], Awaitable[Engine]] | None = None,
                      **kwargs: Any) -> JobService:
        """A service storing jobs where `store_from_settings` says (PostgreSQL at
        `DATABASE_URL`, else `DATA_DIR/evalserve.db`), grading with `engine` and
        `kit` (default `JudgeKit.from_settings(settings)`); other keyword arguments go to
        `JobService` (e.g. `item_hooks`, `finish_hooks`)."""
        kit = kwargs.pop("kit", None) or JudgeKit.from_settings(settings)

        async def ready() -> Engine:
            return engine

        return cls(store_from_settings(settings), kit, engine,
                   engine_provider or ready, RunnerConfig.from_settings(settings),
                   max_items=settings.max_items_per_job,
                   max_field_chars=settings.max_field_chars,
                   poll_interval=settings.sse_polling_interval,
                   max_queued_jobs=settings.max_queued_jobs_per_caller, **kwargs)

    async def start(self) -> None:
        """Open the store, listen for other replicas' events (where the store can tell), and
        start the runner."""
        await self.store.open()
        await self.relay.start()
        await self.runner.start()

    async def close(self) -> None:
        await self.runner.close()
        await self.relay.close()
        await self.store.close()

    def active_jobs(self) -> int:
        """Queued + running jobs."""
        return self.runner.active_jobs()

    async def submit(
        self,
        items: Any,
        rubric: str | dict[str, Any] | None = None,
        *,
        metrics: list[str] | None = None,
        track: dict[str, Any] | None = None,
        owner: str | None = None,
        charge: Callable[[int], Awaitable[None]] | None = None,
        judges: list[dict[str, Any]] | None = None,
        aggregate: str | None = None,
        min_successful: int | None = None,
        samples: int | None = None,
        reducer: str | None = None,
        temperature: float | None = None,
        model: str | None = None,
    ) -> Submission:
        """Validate everything, then store the job of `owner` and its items in one
        transaction and queue it. Nothing is stored when any item is invalid, when the engine
        failed to load (503), or when `owner` already has `max_queued_jobs` queued (429).
        `charge(n)` (a rate limit, in items) is called once all of that passed, before
        storing: a refused submission costs nothing.

        `judges`, `aggregate`, `min_successful` (a jury) and `samples`, `reducer`,
        `temperature` (repeated sampling) and `model` (the judge model: one of the engine's
        `models()`) are checked and resolved by `evalserve.jobs.panel.panel_options` and
        stored in the job's options; every item must suit every judge's rubric."""
        await self.runner.check_engine()
        if metrics is not None and not (isinstance(metrics, list)
                                        and all(isinstance(m, str) for m in metrics)):
            raise InvalidInputError("metrics must be a list of metric names")
        if metrics:
            from evalserve.jobs.hooks import validate_job_metrics

            metrics = validate_job_metrics(metrics)  # unknown names: 422 naming them
        if track is not None and not isinstance(track, dict):
            raise InvalidInputError("track must be an object of tracking options")
        name, rubric_dump = self.kit.load_rubric(rubric)
        options = JobOptions(metrics=list(metrics or []), track=track,
                             traceparent=current_traceparent(), **await panel_options(
            self.kit, self.engine, name, rubric_dump, judges=judges, aggregate=aggregate,
            min_successful=min_successful, samples=samples, reducer=reducer,
            temperature=temperature, model=model))
        grader = self.kit.grader(self.engine, rubric_dump, options)
        checked = validate_items(items, grader, max_items=self.max_items,
                                 max_field_chars=self.max_field_chars)
        job = Job(
            id=str(uuid.uuid4()), status=JobStatus.QUEUED, rubric_name=name, rubric=rubric_dump,
            total=len(checked), options=options,
            owner=owner, created_at=time.time(),
        )
        # Submissions in progress count as queued, so concurrent ones cannot pass the cap.
        self._submitting[owner] = self._submitting.get(owner, 0) + 1
        try:
            await self._check_queue(owner)
            if charge is not None:
                await charge(len(checked))
            await self.store.create_job(job, checked)
        finally:
            self._submitting[owner] -= 1
            if not self._submitting[owner]:
                del self._submitting[owner]
        self.runner.notify_submitted()
        eta = estimate_seconds(job.total, self.runner.seconds_per_item())
        return Submission(job, eta)

    async def _check_queue(self, owner: str | None) -> None:
        if self.max_queued_jobs is None:
            return
        queued = await self.store.count_queued(owner)
        if queued + self._submitting.get(owner, 1) - 1 >= self.max_queued_jobs:
            raise RateLimitError(
                f"you already have {queued} queued job(s), the most allowed "
                f"(MAX_QUEUED_JOBS_PER_CALLER={self.max_queued_jobs}); wait for one to start "
                "or cancel one (DELETE /jobs/{id}), then submit again", retry_after=5)

    async def get(self, job_id: str, *, visible_to: str | None = None) -> Job:
        """The job; `NotFoundError` if it does not exist or `visible_to` does not own it."""
        try:
            job = await self.store.get_job(job_id)
        except NotFoundError:
            raise job_not_found(job_id) from None
        if visible_to is not None and job.owner != visible_to:
            raise job_not_found(job_id)
        return job

    async def list(self, status: JobStatus | None = None, limit: int = 50, *,
                   visible_to: str | None = None) -> list[Job]:
        """Jobs newest first (only those of `visible_to` when given)."""
        return await self.store.list_jobs(status, limit, owner=visible_to)

    async def cancel(self, job_id: str, *, visible_to: str | None = None) -> Job:
        await self.get(job_id, visible_to=visible_to)
        return await self.runner.cancel(job_id)

    async def retry(self, job_id: str, *, unscored: bool = False,
                    visible_to: str | None = None) -> Job:
        """Grade a finished job's `error` items again (and its `unscored` ones with
        `unscored`): their new results replace the old ones, the job is queued again and its
        stream goes on with new batches and a new final event. `ConflictError` (409) while the
        job is queued or running, or when it has no such item."""
        await self.get(job_id, visible_to=visible_to)
        await self.store.retry_items(job_id, unscored=unscored)
        self.runner.notify_submitted()
        return await self.store.get_job(job_id)

    async def follow(self, job_id: str, after_id: int = 0) -> AsyncIterator[JobEvent]:
        """The job's events after `after_id`, stored then live, until its final event. The
        final events of earlier runs of a retried job are left out (the stream ends once, at
        the current run's end)."""
        async for event in follow_events(self.store, self.bus, job_id, after_id,
                                         poll_interval=self.poll_interval):
            if not superseded(event):
                yield event

    async def export(self, job_id: str, fmt: str, *,
                     visible_to: str | None = None) -> tuple[Job, AsyncIterator[str]]:
        """The job and its results as text chunks in `fmt` (json, jsonl, csv)."""
        if fmt not in FORMATS:
            raise InvalidInputError(f"format={fmt!r}: use one of {', '.join(FORMATS)}")
        job = await self.get(job_id, visible_to=visible_to)
        chunks = export_results(self.store, job, fmt)
        return job, chunks

