"""Tracked jobs: `POST /evaluate` with `"track": {"experiment", "run_name"}` logs an MLflow run
when the job completes.

`tracking_component` (a server lifespan component) registers two job-runner hooks:

- an item hook that, for tracked jobs only, keeps the item's input fields in its result record
  under `input` (persisted with the result, so a job resumed after a restart still has every
  row's inputs for the MLflow table);
- a finish hook that logs the run in a worker thread (MLflow is blocking) and returns a
  `tracking` event: `{"status": "logged", "run_id", "experiment_id", ...}` or
  `{"status": "failed", "message"}`. A tracking failure never fails the job: its results are
  stored and it still completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from evalserve.errors import InvalidInputError, TrackingError

if TYPE_CHECKING:
    from evalserve.jobs.models import Job
    from evalserve.server.state import AppState

__all__ = ["validate_track", "track_option", "tracking_component", "TRACKING_EVENT", "INPUT_KEY"]

log = logging.getLogger(__name__)

#: SSE event a tracked job emits before `complete`.
TRACKING_EVENT = "tracking"
#: Record key holding a tracked item's input fields.
INPUT_KEY = "input"
_TRACK_KEYS = {"experiment", "run_name", "tags"}


def validate_track(track: Any) -> dict[str, Any]:
    """The `track` option of a job: `{"experiment"?: str, "run_name"?: str, "tags"?: {str: str}}`.

    The tracking URI is the server's (`MLFLOW_TRACKING_URI`), never the request's.
    """
    if not isinstance(track, Mapping):
        raise InvalidInputError('track must be an object, e.g. {"experiment": "my-eval"}')
    unknown = sorted(set(track) - _TRACK_KEYS)
    if unknown:
        raise InvalidInputError(
            f"track: unknown keys {unknown}; accepted: experiment, run_name, tags (the tracking "
            "URI is the server's MLFLOW_TRACKING_URI)")
    for key in ("experiment", "run_name"):
        value = track.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()
                                  or len(value) > 250):
            raise InvalidInputError(f"track.{key} must be a non-empty string of at most 250 "
                                    "characters")
    tags = track.get("tags")
    if tags is not None and not (isinstance(tags, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items())):
        raise InvalidInputError("track.tags must be an object of string values")
    return dict(track)


def track_option(track: Any) -> dict[str, Any]:
    """`validate_track` for pydantic validators (a `ValueError` becomes the 422 envelope)."""
    try:
        return validate_track(track)
    except InvalidInputError as exc:
        raise ValueError(exc.message) from None


def _tracked(job: Job | None) -> bool:
    return job is not None and bool(job.options.track is not None)


def remember_inputs(item: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """Item hook: keep a tracked item's inputs in its record (nothing for other jobs)."""
    from evalserve.jobs.runner import current_job

    job = current_job.get(None)
    return {INPUT_KEY: dict(item)} if _tracked(job) else {}


def _log_job(state: AppState, job: Job, records: list[dict[str, Any]]) -> dict[str, Any]:
    from evalserve.judge.rubric import Rubric
    from evalserve.tracking.mlflow import log_evaluation_run, resolve_tracking_uri

    track = job.options.track or {}
    rubric = Rubric.model_validate(job.rubric)
    items = [r.get(INPUT_KEY) or {} for r in records]
    rows = [{k: v for k, v in r.items() if k != INPUT_KEY} for r in records]
    kit = getattr(state.services.get("jobs"), "kit", None)
    # finish hooks run before the job is marked finished: elapsed is up to now
    elapsed = job.elapsed(time.time())
    run = log_evaluation_run(
        rows,
        rubric=rubric,
        items=items,
        params={
            "engine": state.settings.engine,
            "model": state.engine.model_id,
            "temperature": getattr(kit, "temperature", None),
            "max_tokens": getattr(kit, "max_tokens", None) or "rubric default",
            "job_id": job.id,
            "items": job.total,
        },
        metrics_extra={"items_per_second": len(rows) / elapsed} if elapsed else None,
        experiment=track.get("experiment"),
        run_name=track.get("run_name") or f"job-{job.id[:8]}",
        tracking_uri=resolve_tracking_uri(state.settings),
        tags={"source": "job", "job_id": job.id, **(track.get("tags") or {})},
    )
    return run.as_event()


def tracking_component(state: AppState) -> contextlib.AbstractAsyncContextManager[None]:
    """Lifespan component: register the tracking hooks with the job runner while the app runs."""

    async def log_tracked_job(job: Job, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not _tracked(job):
            return []
        try:
            data = await asyncio.to_thread(_log_job, state, job, records)
        except TrackingError as exc:
            log.warning("job %s: %s", job.id, exc.message)
            data = {"status": "failed", "message": exc.message, "code": exc.code}
        except Exception as exc:  # a bug here must not cost the job its completion
            log.exception("job %s: tracking failed", job.id)
            data = {"status": "failed", "message": f"tracking failed: {exc}",
                    "code": "tracking_error"}
        return [{"event": TRACKING_EVENT, "data": {"job_id": job.id, **data}}]

    @contextlib.asynccontextmanager
    async def run() -> AsyncIterator[None]:
        from evalserve.jobs.runner import FINISH_HOOKS, ITEM_HOOKS

        if remember_inputs not in ITEM_HOOKS:
            ITEM_HOOKS.append(remember_inputs)
        FINISH_HOOKS.append(log_tracked_job)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                FINISH_HOOKS.remove(log_tracked_job)
            if not any(getattr(h, "__name__", "") == "log_tracked_job" for h in FINISH_HOOKS):
                with contextlib.suppress(ValueError):
                    ITEM_HOOKS.remove(remember_inputs)

    return run()
