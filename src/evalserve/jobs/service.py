"""`JobService`: the job API used by the HTTP routes and the CLI (submit, follow, read, cancel).

The server builds it (with its hooks) in `evalserve.server.components`; the CLI builds its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalserve.engines.base import Engine
from evalserve.errors import EngineUnavailableError, InvalidInputError
from evalserve.jobs.events import EventBus, follow_events
from evalserve.jobs.export import FORMATS, export_results
from evalserve.jobs.extensions import FinishHook, ItemHook
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.models import Job, JobEvent, JobOptions, JobStatus
from evalserve.jobs.progress import estimate_seconds
from evalserve.jobs.runner import JobRunner, RunnerConfig
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.jobs.store import JobStore
from evalserve.jobs.validation import validate_items

__all__ = ["JobService", "Submission", "database_path"]

DB_NAME = "evalserve.db"


def database_path(data_dir: Path) -> Path:
    """Where the job database lives under `DATA_DIR`."""
    return Path(data_dir) / DB_NAME


@dataclass
class Submission:
    """A stored job and its first time estimate."""

    job: Job
    estimated_time_seconds: int


class JobService:
    """Jobs over one store, one runner and one event bus.

    `item_hooks` and `finish_hooks` go to the runner (see `evalserve.jobs.extensions`);
    `runner_options` are further `JobRunner` keyword arguments (e.g. `clock`).
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
        item_hooks: Sequence[ItemHook] = (),
        finish_hooks: Sequence[FinishHook] = (),
        runner_options: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.kit = kit
        self.engine = engine
        self.bus = EventBus()
        self.runner = JobRunner(store, self.bus, kit, engine_provider, config,
                                item_hooks=item_hooks, finish_hooks=finish_hooks,
                                **(runner_options or {}))
        self.max_items = max_items
        self.max_field_chars = max_field_chars
        self.poll_interval = poll_interval

    @classmethod
    def from_settings(cls, settings: Any, engine: Engine,
                      engine_provider: Callable[[], Awaitable[Engine]] | None = None,
                      **kwargs: Any) -> JobService:
        """A service storing jobs in `DATA_DIR/evalserve.db`, grading with `engine` and
        `kit` (default `JudgeKit.from_settings(settings)`); other keyword arguments go to
        `JobService` (e.g. `item_hooks`, `finish_hooks`)."""
        kit = kwargs.pop("kit", None) or JudgeKit.from_settings(settings)

        async def ready() -> Engine:
            return engine

        return cls(SQLiteJobStore(database_path(settings.data_dir)), kit, engine,
                   engine_provider or ready, RunnerConfig.from_settings(settings),
                   max_items=settings.max_items_per_job,
                   max_field_chars=settings.max_field_chars,
                   poll_interval=settings.sse_polling_interval, **kwargs)

    async def start(self) -> None:
        await self.store.open()
        await self.runner.start()

    async def close(self) -> None:
        await self.runner.close()
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
    ) -> Submission:
        """Validate everything, then store the job and its items in one transaction and queue
        it. Nothing is stored when any item is invalid."""
        if self.runner.engine_error is not None:
            raise EngineUnavailableError(
                f"the model failed to load ({self.runner.engine_error}); jobs cannot run")
        if metrics is not None and not (isinstance(metrics, list)
                                        and all(isinstance(m, str) for m in metrics)):
            raise InvalidInputError("metrics must be a list of metric names")
        if metrics:
            from evalserve.jobs.hooks import validate_job_metrics

            metrics = validate_job_metrics(metrics)  # unknown names: 422 naming them
        if track is not None and not isinstance(track, dict):
            raise InvalidInputError("track must be an object of tracking options")
        name, rubric_dump = self.kit.load_rubric(rubric)
        grader = self.kit.grader(self.engine, rubric_dump)
        checked = validate_items(items, grader, max_items=self.max_items,
                                 max_field_chars=self.max_field_chars)
        job = Job(
            id=str(uuid.uuid4()), status=JobStatus.QUEUED, rubric_name=name, rubric=rubric_dump,
            total=len(checked), options=JobOptions(metrics=list(metrics or []), track=track),
            created_at=time.time(),
        )
        await self.store.create_job(job, checked)
        self.runner.notify_submitted()
        eta = estimate_seconds(job.total, self.runner.seconds_per_item())
        return Submission(job, eta)

    async def get(self, job_id: str) -> Job:
        return await self.store.get_job(job_id)

    async def list(self, status: JobStatus | None = None, limit: int = 50) -> list[Job]:
        return await self.store.list_jobs(status, limit)

    async def cancel(self, job_id: str) -> Job:
        return await self.runner.cancel(job_id)

    async def follow(self, job_id: str, after_id: int = 0) -> AsyncIterator[JobEvent]:
        """The job's events after `after_id`, stored then live, until its final event."""
        async for event in follow_events(self.store, self.bus, job_id, after_id,
                                         poll_interval=self.poll_interval):
            yield event

    async def export(self, job_id: str, fmt: str) -> tuple[Job, AsyncIterator[str]]:
        """The job and its results as text chunks in `fmt` (json, jsonl, csv)."""
        if fmt not in FORMATS:
            raise InvalidInputError(f"format={fmt!r}: use one of {', '.join(FORMATS)}")
        job = await self.store.get_job(job_id)
        chunks = export_results(self.store, job, fmt)
        return job, chunks

