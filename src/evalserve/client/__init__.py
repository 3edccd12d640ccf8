"""Clients of evalserve's own HTTP API: the metric routes (seed 002's `metrics_client`,
re-exported here), the job API (`client.jobs`), `/predict` (`client.predict`) and the served
model (`client.models`), all over one HTTP layer (`client.http`).

    from evalserve.client import getLoss, getRelevance, getFactuality, getReadability

See `evalserve.client.metrics` for where the server and token come from.
"""

from __future__ import annotations

from evalserve.client.http import DEFAULT_URL, EvalserveHTTPError
from evalserve.client.metrics import (
    DEFAULT_TARGETS_FILE,
    EvalserveClient,
    calibrate_targets,
    calibrateTargets,
    generate_summary,
    get_factuality,
    get_loss,
    get_readability,
    get_relevance,
    get_rouge,
    getFactuality,
    getLoss,
    getReadability,
    getRelevance,
)

__all__ = [
    "DEFAULT_URL",
    "DEFAULT_TARGETS_FILE",
    "EvalserveClient",
    "EvalserveHTTPError",
    "calibrate_targets",
    "calibrateTargets",
    "get_factuality",
    "get_loss",
    "get_readability",
    "get_relevance",
    "get_rouge",
    "generate_summary",
    "getFactuality",
    "getLoss",
    "getReadability",
    "getRelevance",
]
