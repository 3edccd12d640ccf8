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

__all__ = ["parse_scale", "prompt_file_rubric", "log_cli_run"]

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
    from evalserve.judge.rubric import rubric_from_prompt_file

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
) -> TrackedRun:
    """Log a finished `evalserve evaluate` as one run (blocking). `TrackingError` names the URI
    when the store is broken; the caller has already written its results file."""
    from evalserve.tracking.mlflow import log_evaluation_run, resolve_tracking_uri

    rate = len(records) / elapsed_seconds if elapsed_seconds else None
    return log_evaluation_run(
        records,
        rubric=rubric,
        items=items,
        params={
            "engine": settings.engine,
            "model": model,
            "temperature": temperature,
            "max_tokens": max_tokens if max_tokens is not None else "rubric default",
            "data_file": Path(data_file).name if data_file else None,
            "items": len(records),
        },
        metrics_extra={"items_per_second": rate, "elapsed_seconds": elapsed_seconds},
        experiment=experiment,
        run_name=run_name or (Path(data_file).stem if data_file else None),
        tracking_uri=resolve_tracking_uri(settings, tracking_uri),
        tags={"source": "cli"},
    )
