"""Tracked jobs: `POST /evaluate` with `"track": {"experiment", "run_name"}` logs an MLflow run
when the job completes.

Two job-runner hooks, which the server passes to its `JobRunner`:

- `remember_inputs`, an item hook that, for tracked jobs only, keeps the item's input fields in
  its result record under `input` (persisted with the result, so a job resumed after a restart
  still has every row's inputs for the MLflow table);
- `TrackedJobLogger`, a finish hook that logs the run in a worker thread (MLflow is blocking)
  and returns a `tracking` event: `{"status": "logged", "run_id", "experiment_id", ...}` or
  `{"status": "failed", "message"}`. A tracking failure never fails the job: its results are
  stored and it still completes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evalserve.errors import InvalidInputError, TrackingError
from evalserve.redact import redact_text
from evalserve.tracking.mlflow import SYSTEM_TAG_PREFIX, is_system_tag

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.jobs.models import Job
    from evalserve.settings import Settings

__all__ = ["validate_track", "track_option", "remember_inputs", "TrackedJobLogger",
           "panel_params", "TRACKING_EVENT", "INPUT_KEY"]

log = logging.getLogger(__name__)

#: SSE event a tracked job emits before `complete`.
TRACKING_EVENT = "tracking"
#: Record key holding a tracked item's input fields.
INPUT_KEY = "input"
_TRACK_KEYS = {"experiment", "run_name", "tags"}
#: MLflow's own limits on a tag (key 250, value 8000 characters), and a bound on their number.
_MAX_TAGS, _MAX_TAG_KEY, _MAX_TAG_VALUE = 100, 250, 8000


def validate_track(track: Any) -> dict[str, Any]:
    """The `track` option of a job: `{"experiment"?: str, "run_name"?: str, "tags"?: {str: str}}`.

    The tracking URI is the server's (`MLFLOW_TRACKING_URI`), never the request's; tags may
    not set MLflow's system tags (`mlflow.*`).
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
    _check_tags(tags or {})
    return dict(track)


def _check_tags(tags: Mapping[str, str]) -> None:
    if len(tags) > _MAX_TAGS:
        raise InvalidInputError(f"track.tags has {len(tags)} tags; at most {_MAX_TAGS}")
    for key, value in tags.items():
        if is_system_tag(key):
            raise InvalidInputError(
                f"track.tags.{key[:_MAX_TAG_KEY]}: tags starting with {SYSTEM_TAG_PREFIX!r} are "
                "MLflow's system tags (run source, user, note) and cannot be set; rename it")
        if not key.strip() or len(key) > _MAX_TAG_KEY or len(value) > _MAX_TAG_VALUE:
            raise InvalidInputError(
                f"track.tags.{key[:_MAX_TAG_KEY]}: a tag needs a non-blank key of at most "
                f"{_MAX_TAG_KEY} characters and a value of at most {_MAX_TAG_VALUE}")


def track_option(track: Any) -> dict[str, Any]:
    """`validate_track` for pydantic validators (a `ValueError` becomes the 422 envelope)."""
    try:
        return validate_track(track)
    except InvalidInputError as exc:
        raise ValueError(exc.message) from None


def panel_params(options: Mapping[str, Any]) -> dict[str, Any]:
    """The run parameters of a job's jury and samples: `judges` (`name=model/rubric`, comma
    separated; a judge as submitted, without a name or model, shows what it has),
    `aggregate`, `min_successful`, `samples`, `reducer`; none for a plain job."""
    out: dict[str, Any] = {}
    judges = options.get("judges")
    if judges:
        out["judges"] = ",".join(
            f"{j.get('name') or i + 1}={j.get('model') or 'job model'}/"
            f"{j.get('rubric_name') or j.get('rubric') or 'job rubric'}"
            for i, j in enumerate(judges))
        out.update(aggregate=options.get("aggregate"),
                   min_successful=options.get("min_successful"))
    if (options.get("samples") or 1) > 1:
        out.update(samples=options["samples"], reducer=options.get("reducer"))
    return out


def _tracked(job: Job) -> bool:
    return job.options.track is not None


def remember_inputs(job: Job, item: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """Item hook: keep a tracked item's inputs in its record (nothing for other jobs)."""
    return {INPUT_KEY: dict(item)} if _tracked(job) else {}


class TrackedJobLogger:
    """Finish hook: log a tracked job as an MLflow run and return its `tracking` event.

    Args:
        settings: the server's settings (`MLFLOW_TRACKING_URI`, or `DATA_DIR/mlflow.db`, and
            the `ENGINE` name logged as a parameter).
        engine: the engine grading the jobs (its `model_id` is logged).
        temperature: the judge's sampling temperature, logged as a parameter.
        max_tokens: the judge's output budget (None: each rubric's own), logged too.
    """

    def __init__(self, settings: Settings, engine: Engine, *, temperature: float | None = None,
                 max_tokens: int | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.__name__ = "log_tracked_job"  # how the runner names the hook in `error` events

    async def __call__(self, job: Job, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not _tracked(job):
            return []
        try:
            data = await asyncio.to_thread(self._log, job, records)
        except TrackingError as exc:
            log.warning("job %s: %s", job.id, exc.message)
            data = {"status": "failed", "message": exc.message, "code": exc.code}
        except Exception as exc:  # a bug here must not cost the job its completion
            log.exception("job %s: tracking failed", job.id)
            data = {"status": "failed", "message": redact_text(f"tracking failed: {exc}"),
                    "code": "tracking_error"}
        return [{"event": TRACKING_EVENT, "data": {"job_id": job.id, **data}}]

    def _log(self, job: Job, records: list[dict[str, Any]]) -> dict[str, Any]:
        from evalserve.judge.rubric import Rubric
        from evalserve.tracking.mlflow import log_evaluation_run, resolve_tracking_uri

        track = job.options.track or {}
        rubric = Rubric.model_validate(job.rubric)
        items = [r.get(INPUT_KEY) or {} for r in records]
        rows = [{k: v for k, v in r.items() if k != INPUT_KEY} for r in records]
        # finish hooks run before the job is marked finished: elapsed is up to now
        elapsed = job.elapsed(time.time())
        run = log_evaluation_run(
            rows,
            rubric=rubric,
            items=items,
            params={
                "engine": self.settings.engine,
                "model": job.options.model or self.engine.model_id,
                "temperature": (self.temperature if job.options.temperature is None
                                else job.options.temperature),
                "max_tokens": self.max_tokens or "rubric default",
                "job_id": job.id,
                "items": job.total,
                **panel_params(job.options.to_dict()),
            },
            metrics_extra={"items_per_second": len(rows) / elapsed} if elapsed else None,
            experiment=track.get("experiment"),
            run_name=track.get("run_name") or f"job-{job.id[:8]}",
            tracking_uri=resolve_tracking_uri(self.settings),
            tags={**(track.get("tags") or {}), "source": "job", "job_id": job.id},
            options=job.options.to_dict(),
            report=job.report,  # computed once by the finisher, not again here
        )
        return run.as_event()
