"""Tracking of evaluation runs in MLflow, and MLflow judges graded by evalserve.

`tracking.mlflow` logs runs, `tracking.summary` computes what a run reports, `tracking.judges`
points MLflow's own judge APIs at an evalserve server, `tracking.jobs` logs finished jobs. Only
`tracking.mlflow` and `tracking.judges` import mlflow, inside the functions that need it:
importing this package does not.
"""

from __future__ import annotations

from evalserve.tracking.mlflow import (
    TrackedRun,
    check_tracking_uri,
    default_tracking_uri,
    log_evaluation_run,
    resolve_tracking_uri,
)
from evalserve.tracking.summary import results_table, summarize

__all__ = [
    "TrackedRun",
    "check_tracking_uri",
    "default_tracking_uri",
    "log_evaluation_run",
    "resolve_tracking_uri",
    "results_table",
    "summarize",
]
