"""What `evalserve evaluate` delegates to for `--prompt-file/--scale` and `--mlflow`.

Kept here so the command stays a thin wrapper: `prompt_file_rubric` turns seed 004's judge
prompt into a rubric, `log_cli_run` logs the finished evaluation as one MLflow run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalserve.errors import InvalidInputError

if TYPE_CHECKING:
    from evalserve.judge.rubric import Rubric
    from evalserve.settings import Settings
    from evalserve.tracking.mlflow import TrackedRun

__all__ = ["parse_scale", "prompt_file_rubric", "log_cli_run", "log_cli_evaluation"]

_SCALE = re.compile(r"^\s*(-?\d+)\s*(?:-|\.\.|:|,)\s*(-?\d+)\s*$")


def parse_scale(text: str) -> tuple[int, int]:
    """`"1-5"` (also `1..5`, `1:5`, `1,5`) -> `(1, 5)`."""
    match = _SCALE.match(text or "")
    if not match:
        raise InvalidInputError(f"--scale {text!r}: write the lowest and highest score, e.g. 1-5")
    low, high = int(match.group(1)), int(match.group(2))
    if low >= high:
        raise InvalidInputError(f"--scale {text!r}: the lowest score must be below the highest")
    if high - low > 100:
        raise InvalidInputError(f"--scale {text!r}: at most 101 scores")
    return low, high


def prompt_file_rubric(path: Path, scale: str = "1-5", name: str | None = None) -> Rubric:
    """The rubric of a judge prompt file with `{question}`/`{answer}` (items may name them
    `inputs`/`predictions`, as in seed 004's CSV)."""
    from evalserve.judge.promptfile import rubric_from_prompt_file

    return rubric_from_prompt_file(Path(path), parse_scale(scale), name=name)


def log_cli_run(
    settings: Settings,
    records: Sequence[Mapping[str, Any]],
    *,
    rubric: Rubric,
    items: Sequence[Mapping[str, Any]] | None = None,
    model: str,
    temperature: float | None = None,
    max_tokens: int | None = None,
    elapsed_seconds: float | None = None,
    data_file: Path | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    tracking_uri: str | None = None,
    engine: str | None = None,
    report: Mapping[str, Any] | None = None,
    job_options: Mapping[str, Any] | None = None,
) -> TrackedRun:
    """Log a finished `evalserve evaluate` as one run (blocking). `report` is the job report
    the CLI summary showed (None: computed from `records`); `job_options` the job options it
    submitted (logged as parameters: `judges`, `samples`, ...). `TrackingError` names the URI
    when the store is broken; the caller has already written its results file."""
    from evalserve.tracking.jobs import panel_params
    from evalserve.tracking.mlflow import log_evaluation_run, resolve_tracking_uri

    rate = len(records) / elapsed_seconds if elapsed_seconds else None
    return log_evaluation_run(
        records,
        rubric=rubric,
        items=items,
        params={
            "engine": engine or settings.engine,
            "model": model,
            "temperature": temperature,
            "max_tokens": max_tokens if max_tokens is not None else "rubric default",
            "data_file": Path(data_file).name if data_file else None,
            "items": len(records),
            **panel_params(job_options or {}),
        },
        metrics_extra={"items_per_second": rate, "elapsed_seconds": elapsed_seconds},
        experiment=experiment,
        run_name=run_name or (Path(data_file).stem if data_file else None),
        tracking_uri=resolve_tracking_uri(settings, tracking_uri),
        tags={"source": "cli"},
        report=report,
    )


def _tracking_rubric(rubric: Rubric | Mapping[str, Any] | None, name: str | None) -> Rubric:
    from evalserve.judge.rubric import Rubric, load_rubric

    if isinstance(rubric, Rubric):
        return rubric
    if rubric:
        try:
            return Rubric.model_validate(dict(rubric))
        except ValueError:  # a server's summary view: look the rubric up by name
            name = name or str(rubric.get("name") or "")
    return load_rubric(name or "teacher-eval-ca")


def _temperature(options: Mapping[str, Any]) -> float:
    """The judge's temperature of a job submitted with `options`, as the job resolves it."""
    from evalserve.jobs.grading import SAMPLE_TEMPERATURE

    if options.get("temperature") is not None:
        return float(options["temperature"])
    return SAMPLE_TEMPERATURE if (options.get("samples") or 1) > 1 else 0.0


def log_cli_evaluation(
    *,
    file: Path,
    items: Sequence[Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    rubric: Rubric | Mapping[str, Any] | None,
    rubric_name: str | None = None,
    elapsed_seconds: float | None = None,
    max_tokens: int | None = None,
    settings: Settings | None = None,
    server: str | None = None,
    token: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    report: Mapping[str, Any] | None = None,
    job_options: Mapping[str, Any] | None = None,
) -> TrackedRun:
    """`evalserve evaluate --mlflow`: log the finished evaluation (in-process or `--server`).

    `rubric` is the rubric object (a prompt file's), or the rubric dict the job reports;
    `items` are the file's items in the order of `records`; `report` the job report the
    summary showed, logged as the run's metrics and `report.json`; `job_options` the job
    options submitted (`model`, `temperature`, `judges`, `samples`, ...).
    """
    from evalserve.settings import load_settings

    settings = settings or load_settings()
    if server:
        from evalserve.client.models import served_model_id

        model, engine = served_model_id(server, token), f"server {server}"
        model = (job_options or {}).get("model") or model
    else:
        from evalserve.engines.registry import create_engine

        model, engine = create_engine(settings).model_id, settings.engine
    return log_cli_run(
        settings, records, rubric=_tracking_rubric(rubric, rubric_name),
        items=items if len(items) == len(records) else None, model=model,
        temperature=_temperature(job_options or {}), max_tokens=max_tokens,
        elapsed_seconds=elapsed_seconds, data_file=file, experiment=experiment,
        run_name=run_name, engine=engine, report=report, job_options=job_options,
    )
