"""Calibration targets (human reference statistics) and the five measurements behind them.

The five metrics, in the order of the loss weights: ``relevance`` (BERTScore F1 of the text
against its original), ``factuality`` (AlignScore, or a pluggable scorer), ``fkgl``,
``smog`` and ``dale_chall`` (readability of the text).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import fmean, pstdev
from typing import Any

from evalserve.errors import InvalidInputError

__all__ = [
    "METRICS",
    "MIN_SCALE",
    "MetricTarget",
    "CalibrationTargets",
    "RelevanceFn",
    "FactualityFn",
    "measure",
    "read_targets_file",
    "targets_from_values",
]

METRICS: tuple[str, ...] = ("relevance", "factuality", "fkgl", "smog", "dale_chall")
# Floors for the scale of each metric, so that a near-constant human sample cannot blow up
# the normalised distance: 0.01 on the [0, 1] scores, a tenth of a grade on readability.
MIN_SCALE: dict[str, float] = {
    "relevance": 0.01,
    "factuality": 0.01,
    "fkgl": 0.1,
    "smog": 0.1,
    "dale_chall": 0.1,
}

RelevanceFn = Callable[[list[str], list[str]], Sequence[float]]
"""``(originals, texts) -> one relevance score in [0, 1] per pair`` (BERTScore F1 by default)."""
FactualityFn = Callable[[list[str], list[str]], Any]
"""``(originals, texts) -> FactualityResult`` or one score in [0, 1] per pair."""


@dataclass(frozen=True)
class MetricTarget:
    """Mean and spread of one metric over human texts."""

    mean: float
    std: float


@dataclass(frozen=True)
class CalibrationTargets:
    """Human targets for the five metrics, plus where they came from."""

    relevance: MetricTarget
    factuality: MetricTarget
    fkgl: MetricTarget
    smog: MetricTarget
    dale_chall: MetricTarget
    n: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def get(self, metric: str) -> MetricTarget:
        """The target of `metric` (one of `METRICS`)."""
        return getattr(self, metric)

    def scale(self, metric: str) -> float:
        """``max(std, MIN_SCALE[metric])``: the unit of distance for `metric`."""
        return max(self.get(metric).std, MIN_SCALE[metric])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the format `calibrate` writes)."""
        out: dict[str, Any] = {m: asdict(self.get(m)) for m in METRICS}
        out["n"] = self.n
        out["meta"] = dict(self.meta)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationTargets:
        """Parse the dict written by `to_dict`; raise `InvalidInputError` if malformed."""
        if not isinstance(data, Mapping):
            raise InvalidInputError("targets must be a JSON object with one entry per metric")
        parsed: dict[str, MetricTarget] = {}
        for metric in METRICS:
            entry = data.get(metric)
            if isinstance(entry, (int, float)) and not isinstance(entry, bool):
                entry = {"mean": entry, "std": 0.0}
            if not isinstance(entry, Mapping) or "mean" not in entry:
                raise InvalidInputError(
                    f"targets lack {metric!r}: expected {{'{metric}': {{'mean': x, 'std': y}}}} "
                    "for each of " + ", ".join(METRICS) + " (run `evalserve calibrate`)"
                )
            try:
                mean = float(entry["mean"])
                std = float(entry.get("std", 0.0))
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"targets[{metric!r}] must hold numbers") from exc
            if not (math.isfinite(mean) and math.isfinite(std)) or std < 0:
                raise InvalidInputError(
                    f"targets[{metric!r}] must have a finite mean and std >= 0"
                )
            parsed[metric] = MetricTarget(mean, std)
        n = data.get("n", 0)
        meta = data.get("meta", {})
        return cls(
            **parsed,
            n=int(n) if isinstance(n, (int, float)) else 0,
            meta=dict(meta) if isinstance(meta, Mapping) else {},
        )

    @classmethod
    def load(cls, path: str | Path) -> CalibrationTargets:
        """Read a targets JSON file written by `calibrate`."""
        return cls.from_dict(read_targets_file(path))

    def save(self, path: str | Path) -> Path:
        """Write the targets as JSON; return the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return p


def read_targets_file(path: str | Path) -> dict[str, Any]:
    """The JSON object of a targets file written by `calibrate`, not yet checked metric by
    metric (`CalibrationTargets.from_dict` does that; the HTTP client lets the server do it)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInputError(
            f"targets file {str(p)!r} not found: run `evalserve calibrate` first"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"targets file {str(p)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"targets file {str(p)!r} must hold a JSON object")
    return data


def targets_from_values(
    values: Mapping[str, Sequence[float]], meta: Mapping[str, Any] | None = None
) -> CalibrationTargets:
    """Targets whose mean and (population) std are those of `values` per metric."""
    parsed = {}
    n = 0
    for metric in METRICS:
        vals = list(values[metric])
        n = len(vals)
        parsed[metric] = MetricTarget(fmean(vals), pstdev(vals) if len(vals) > 1 else 0.0)
    return CalibrationTargets(**parsed, n=n, meta=dict(meta or {}))


def _default_relevance(originals: list[str], texts: list[str]) -> list[float]:
    from evalserve.metrics.bertscore import relevance

    return [s.f1 for s in relevance(originals, texts).scores]


def _default_factuality(originals: list[str], texts: list[str]) -> Any:
    from evalserve.metrics.factuality import factuality

    return factuality(originals, texts)


def measure(
    originals: list[str],
    texts: list[str],
    relevance_fn: RelevanceFn | None = None,
    factuality_fn: FactualityFn | None = None,
    lang: str = "en",
) -> tuple[dict[str, list[float]], str]:
    """The five metrics of each text (against its original) and the factuality method name."""
    from evalserve.metrics.readability import readability

    rel = [float(x) for x in (relevance_fn or _default_relevance)(originals, texts)]
    fact_out = (factuality_fn or _default_factuality)(originals, texts)
    method = getattr(fact_out, "method", None) or (
        "alignscore" if factuality_fn is None else getattr(factuality_fn, "__name__", "custom")
    )
    fact = [float(x) for x in getattr(fact_out, "scores", fact_out)]
    if len(rel) != len(texts) or len(fact) != len(texts):
        raise InvalidInputError(
            "a relevance or factuality scorer returned a different number of scores than "
            f"texts ({len(rel)}, {len(fact)} for {len(texts)}): it must return one per pair"
        )
    read = readability(texts, lang=lang).scores
    values = {
        "relevance": rel,
        "factuality": fact,
        "fkgl": [s.fkgl for s in read],
        "smog": [s.smog for s in read],
        "dale_chall": [s.dale_chall for s in read],
    }
    return values, str(method)
