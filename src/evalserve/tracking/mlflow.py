"""Log an evaluation run to MLflow (mlflow is imported inside the functions, not at import).

One run per evaluation: parameters (engine, model, rubric name and hash, temperature, max
tokens, scale), metrics (`tracking.summary.summarize`, the job report's `flat_metrics` —
agreement with human grades, pairwise, jury, samples — and seed 004's
`llm_judge_accuracy/v1/{mean,variance,p90}`), tags (`experiment_type=llm_judge_evaluation` as
in seed 004, the evalserve version), the per-row table `eval_results_table.json` (shown as a
table in the MLflow UI's Evaluation/Artifacts view), the rubric as `rubric.yaml`, the job
report as `report.json` and, with human grades, confusion-matrix heat maps
(`tracking.artifacts`).

The default store needs no server: `sqlite:///DATA_DIR/mlflow.db`, artifacts under
`DATA_DIR/mlartifacts`. A broken tracking URI fails fast with a `TrackingError` naming it
(an HTTP server is probed first; MLflow's own retries would take minutes).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from evalserve import __version__
from evalserve.errors import TrackingError
from evalserve.redact import redact_text, redact_url
from evalserve.tracking.artifacts import REPORT_ARTIFACT, log_report_artifacts
from evalserve.tracking.summary import (
    genai_metric_aggregates,
    metric_name,
    results_table,
    summarize,
)

if TYPE_CHECKING:
    from evalserve.judge.rubric import Rubric
    from evalserve.settings import Settings

__all__ = [
    "TrackedRun",
    "EXPERIMENT_TYPE",
    "TABLE_ARTIFACT",
    "RUBRIC_ARTIFACT",
    "DEFAULT_EXPERIMENT",
    "default_tracking_uri",
    "resolve_tracking_uri",
    "check_tracking_uri",
    "is_system_tag",
    "SYSTEM_TAG_PREFIX",
    "log_evaluation_run",
    "run_report",
    "report_metrics",
]

log = logging.getLogger(__name__)

#: Seed 004 finds its runs by this tag.
EXPERIMENT_TYPE = "llm_judge_evaluation"
TABLE_ARTIFACT = "eval_results_table.json"
RUBRIC_ARTIFACT = "rubric.yaml"
DEFAULT_EXPERIMENT = "evalserve"
#: Tags MLflow reserves for itself; user tags may not set them.
SYSTEM_TAG_PREFIX = "mlflow."
#: Seconds the HTTP probe of a tracking server may take.
PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class TrackedRun:
    """Where a logged run lives. `str(run)` is the run id."""

    run_id: str
    experiment_id: str
    experiment: str
    tracking_uri: str

    def __str__(self) -> str:
        return self.run_id

    @property
    def ui_url(self) -> str | None:
        """The run's page when the tracking URI is an MLflow server."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return None
        base = redact_url(self.tracking_uri).rstrip("/")
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def as_event(self) -> dict[str, str]:
        """The payload of a job's `tracking` event on success (credentials in the tracking
        URI redacted: clients see the event)."""
        return {"status": "logged", "run_id": self.run_id, "experiment_id": self.experiment_id,
                "experiment": self.experiment, "tracking_uri": redact_url(self.tracking_uri)}


def default_tracking_uri(data_dir: Path) -> str:
    """`sqlite:///<DATA_DIR>/mlflow.db` with an absolute path."""
    return f"sqlite:///{(Path(data_dir) / 'mlflow.db').resolve()}"


def resolve_tracking_uri(settings: Settings, explicit: str | None = None) -> str:
    """`explicit` (CLI option) > `MLFLOW_TRACKING_URI` > the SQLite store under DATA_DIR."""
    uri = explicit or settings.mlflow_tracking_uri or default_tracking_uri(settings.data_dir)
    return uri.strip()


def _sqlite_path(uri: str) -> Path | None:
    rest = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else None
    if rest is None or rest.startswith(":memory:") or not rest:
        return None
    return Path(rest.split("?", 1)[0])


def _local_root(uri: str) -> Path | None:
    """The directory a local store writes into (SQLite file's folder, or a file store)."""
    if (db := _sqlite_path(uri)) is not None:
        return db.parent
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "" and uri:
        return Path(uri)
    return None


def _artifact_location(uri: str) -> str | None:
    """Artifacts of a SQLite store go next to the database, not into the working directory."""
    db = _sqlite_path(uri)
    return (db.parent.resolve() / "mlartifacts").as_uri() if db is not None else None


def check_tracking_uri(uri: str) -> None:
    """Fail fast on a tracking URI that cannot work: a server that does not answer, a local
    store whose directory cannot be created or written. Messages show the URI redacted."""
    shown = redact_url(uri)
    if uri.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT)
        except httpx.HTTPError as exc:
            raise TrackingError(
                f"MLflow tracking server {shown} is unreachable "
                f"({type(exc).__name__}: {redact_text(str(exc))}); "
                "start it (`mlflow server`) or fix MLFLOW_TRACKING_URI / --tracking-uri"
            ) from None
        if response.status_code >= 500:
            raise TrackingError(
                f"MLflow tracking server {shown} answered {response.status_code} to /health; "
                "check the server's logs"
            )
        return
    root = _local_root(uri)
    if root is None:
        return  # databricks, postgresql://, ...: MLflow reports its own errors
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(
            f"cannot create the MLflow store directory {root} for tracking URI {shown}: "
            f"{exc.strerror or exc}; set MLFLOW_TRACKING_URI to a writable location"
        ) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise TrackingError(
            f"the MLflow store directory {root} (tracking URI {shown}) is not writable; "
            "set MLFLOW_TRACKING_URI to a writable location"
        )


def _http_fail_fast(uri: str) -> None:
    """MLflow retries HTTP calls with backoff for minutes by default; one try is enough here
    (the server was just probed). A value the user set is kept."""
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def _experiment_id(client: Any, name: str, uri: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow experiment {name!r} at {redact_url(uri)} is deleted; restore it "
                f"(`mlflow experiments restore --experiment-id {experiment.experiment_id}`) "
                "or choose another --experiment"
            )
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=_artifact_location(uri))
    except MlflowException:  # created concurrently by another job
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _rubric_yaml(rubric: Rubric) -> str:
    import yaml

    data = rubric.model_dump(mode="json")
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _params(rubric: Rubric, params: Mapping[str, Any] | None) -> dict[str, str]:
    merged: dict[str, Any] = {
        "rubric_name": rubric.name,
        "rubric_hash": rubric.hash(),
        "scale": f"{rubric.scale_min}-{rubric.scale_max}" if rubric.scale_contiguous
        else ",".join(str(s) for s in rubric.scale),
        "rubric_language": rubric.language,
        "rubric_format": rubric.format,
    }
    merged.update(params or {})
    return {k: str(v)[:6000] for k, v in merged.items() if v is not None}


def _user_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """`tags` without MLflow's system tags (`mlflow.*`: source, user, parent run, note...),
    which only MLflow and evalserve set; a dropped tag is logged as a warning."""
    kept = {}
    for key, value in (tags or {}).items():
        if is_system_tag(key):
            log.warning("tag %r not logged: mlflow.* tags are MLflow's own", key)
        else:
            kept[key] = value
    return kept


def is_system_tag(key: str) -> bool:
    """MLflow reserves the `mlflow.` tag namespace (any case, surrounding blanks ignored)."""
    return key.strip().lower().startswith(SYSTEM_TAG_PREFIX)


def run_report(records: Sequence[Mapping[str, Any]], rubric: Rubric,
               options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The job report of a run's records (`judge.report.job_report`, the one computation
    every surface shows)."""
    from evalserve.judge.report import job_report

    return job_report(list(records), rubric.model_dump(mode="json"), dict(options or {}))


def report_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The report's `flat_metrics` as MLflow metrics (finite numbers, MLflow-safe keys)."""
    from evalserve.judge.report import flat_metrics

    return {metric_name(k): float(v) for k, v in flat_metrics(dict(report)).items()
            if _finite(v)}


def _finite(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and math.isfinite(value))


def log_evaluation_run(
    records: Sequence[Mapping[str, Any]],
    *,
    rubric: Rubric,
    params: Mapping[str, Any] | None = None,
    metrics_extra: Mapping[str, float] | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    tracking_uri: str,
    items: Sequence[Mapping[str, Any]] | None = None,
    tags: Mapping[str, str] | None = None,
    report: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> TrackedRun:
    """Log one evaluation as one MLflow run and return where it is.

    `records` are the judge's output records (`Grade.record(rubric)`, optionally with a
    `metrics` dict), `items` the graded inputs in the same order (they become the table's
    input columns). `params` should name at least `engine`, `model`, `temperature` and
    `max_tokens`; `metrics_extra` adds run-level metrics such as `items_per_second`.
    `report` is the job report already shown elsewhere (the CLI summary); without it, it is
    computed from `records` and the job's `options` (`run_report`).
    Blocking: call it from a thread in async code. Raises `TrackingError` naming the URI when
    the store cannot be reached or written.
    """
    experiment = experiment or DEFAULT_EXPERIMENT
    check_tracking_uri(tracking_uri)
    _http_fail_fast(tracking_uri)
    table = results_table(records, rubric, items)
    if report is None:
        report = run_report(records, rubric, options)
    metrics = summarize(records, rubric)
    metrics.update(genai_metric_aggregates(records, rubric))
    metrics.update(report_metrics(report))
    metrics.update({k: float(v) for k, v in (metrics_extra or {}).items() if v is not None})
    # evalserve's own tags last: a user tag may not relabel the run's rubric or version
    run_tags = {**_user_tags(tags), "experiment_type": EXPERIMENT_TYPE,
                "evalserve_version": __version__, "rubric": rubric.name}
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param, RunTag
    except ImportError as exc:  # pragma: no cover - mlflow is a core dependency
        raise TrackingError(f"MLflow is not installed ({exc}); pip install 'mlflow>=3.1'") from None

    run_id: str | None = None
    client = None
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        experiment_id = _experiment_id(client, experiment, tracking_uri)
        run = client.create_run(experiment_id, run_name=run_name, tags=run_tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in _params(rubric, params).items()],
            tags=[RunTag("mlflow.note.content", _note(rubric, metrics, report))],
        )
        client.log_table(run_id, data=table, artifact_file=TABLE_ARTIFACT)
        client.log_text(run_id, _rubric_yaml(rubric), RUBRIC_ARTIFACT)
        log_report_artifacts(client, run_id, report)
        client.set_terminated(run_id, "FINISHED")
    except TrackingError:
        raise
    except Exception as exc:
        if run_id is not None and client is not None:
            try:
                client.set_terminated(run_id, "FAILED")
            except Exception:  # the store is already failing; the original error matters
                log.debug("could not mark run %s failed", run_id, exc_info=True)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(
            f"logging the evaluation to MLflow at {redact_url(tracking_uri)} failed: "
            f"{redact_text(message)[:500]}"
        ) from exc
    log.info("logged MLflow run %s in experiment %s (%s)", run_id, experiment,
             redact_url(tracking_uri))
    return TrackedRun(run_id=run_id, experiment_id=experiment_id, experiment=experiment,
                      tracking_uri=tracking_uri)


def _note(rubric: Rubric, metrics: Mapping[str, float], report: Mapping[str, Any]) -> str:
    """The run description shown at the top of the run page."""
    mean = metrics.get("score_mean")
    mean_text = f"{mean:.2f}" if mean is not None else "n/a"
    agreement = (report.get("agreement") or {}).get("score") or {}
    qwk = agreement.get("qwk")
    human = (f" Agreement with human grades over {agreement.get('n')} items: QWK {qwk:.3f} "
             f"(artifacts `{REPORT_ARTIFACT}`, `confusion_matrix.png`)."
             if _finite(qwk) else "")
    return (
        f"LLM-as-a-judge evaluation with rubric `{rubric.name}` (scale {list(rubric.scale)}): "
        f"{int(metrics.get('items_total', 0))} items, mean score {mean_text}, "
        f"{int(metrics.get('unscored_count', 0))} unscored. Per-row scores and justifications: "
        f"artifact `{TABLE_ARTIFACT}`.{human}"
    )
