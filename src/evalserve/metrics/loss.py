"""The weighted loss of seed 002: how far generated texts are from human expert texts.

Five metrics are measured on each generated text ``g`` (against its original ``o``):
``relevance`` (BERTScore F1 of g vs o), ``factuality`` (AlignScore of g vs o, or any
pluggable scorer such as the LLM-judge fallback), ``fkgl``, ``smog`` and ``dale_chall``
(readability of g). Each is compared with a human target ``(mu_k, sigma_k)``, the mean and
standard deviation of the same metric on human texts, and turned into a distance in units
of human spread, ``s_k = max(sigma_k, MIN_SCALE[k])`` (floors: 0.01 for relevance and
factuality, 0.1 for the readability indices)::

    term_relevance  = max(0, mu_rel  - relevance)  / s_rel     (only a shortfall counts)
    term_factuality = max(0, mu_fact - factuality) / s_fact    (only a shortfall counts)
    term_fkgl       = |fkgl - mu_fkgl| / s_fkgl                 (both directions count)
    term_smog       = |smog - mu_smog| / s_smog
    term_dale_chall = |dale_chall - mu_dc| / s_dc

    loss(g) = sum_k w_k * term_k           loss = mean over items of loss(g)

Why: a term of 1 means "one human standard deviation away", so the five terms are
commensurable whatever their units (F1 in [0, 1], grade levels). Being more relevant or more
faithful than the human texts is never penalised; a reading level is a target, not a
bound, so being harder or simpler than humans both count. 0 means "indistinguishable from
the human average".

Targets: ``targets`` is a `CalibrationTargets`, a dict in its JSON format, or the path of
a file written by `calibrate`. Without targets they are computed from ``humans``: the same
five metrics on each human text (against its original), mean and population std over the
batch. Weights are ``[relevance, factuality, fkgl, smog, dale_chall]``: five non-negative
numbers summing to 1 (within 1e-6); default ``[0.25, 0.25, 0.2, 0.15, 0.15]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from evalserve.errors import InvalidInputError
from evalserve.metrics._validation import check_pairs
from evalserve.metrics.targets import (
    METRICS,
    CalibrationTargets,
    FactualityFn,
    RelevanceFn,
    measure,
    targets_from_values,
)

__all__ = ["DEFAULT_WEIGHTS", "LossResult", "loss", "validate_weights", "loss_terms"]

DEFAULT_WEIGHTS: tuple[float, ...] = (0.25, 0.25, 0.2, 0.15, 0.15)
_ONE_SIDED = frozenset({"relevance", "factuality"})


@dataclass(frozen=True)
class LossResult:
    """The mean loss, per-item losses, and everything that went into them."""

    loss: float
    losses: list[float]
    terms: dict[str, list[float]]
    metrics: dict[str, list[float]]
    targets: CalibrationTargets
    weights: list[float]
    factuality_method: str


def validate_weights(weights: Sequence[float]) -> list[float]:
    """Return `weights` as floats, or raise `InvalidInputError` saying what is wrong."""
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise InvalidInputError(
            "weights must be a list of 5 numbers [relevance, factuality, fkgl, smog, dale_chall]"
        )
    if len(weights) != len(METRICS):
        raise InvalidInputError(
            f"weights must have exactly {len(METRICS)} numbers "
            f"[relevance, factuality, fkgl, smog, dale_chall], got {len(weights)}"
        )
    out = []
    for name, w in zip(METRICS, weights):
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise InvalidInputError(f"weight for {name} must be a finite number, got {w!r}")
        if w < 0:
            raise InvalidInputError(f"weight for {name} must be >= 0, got {w}")
        out.append(float(w))
    total = math.fsum(out)
    if abs(total - 1.0) > 1e-6:
        raise InvalidInputError(f"weights must sum to 1 (within 1e-6), they sum to {total:.8g}")
    return out


def _resolve_targets(targets: CalibrationTargets | Mapping[str, Any] | str | Path):
    if isinstance(targets, CalibrationTargets):
        return targets
    if isinstance(targets, (str, Path)):
        return CalibrationTargets.load(targets)
    return CalibrationTargets.from_dict(targets)


def loss_terms(
    values: Mapping[str, Sequence[float]], targets: CalibrationTargets
) -> dict[str, list[float]]:
    """The normalised distance of each metric value to its target (see the module doc)."""
    terms: dict[str, list[float]] = {}
    for metric in METRICS:
        mu = targets.get(metric).mean
        scale = targets.scale(metric)
        if metric in _ONE_SIDED:
            terms[metric] = [max(0.0, mu - v) / scale for v in values[metric]]
        else:
            terms[metric] = [abs(v - mu) / scale for v in values[metric]]
    return terms


def loss(
    originals: Sequence[str],
    humans: Sequence[str] | None,
    generated: Sequence[str],
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    targets: CalibrationTargets | Mapping[str, Any] | str | Path | None = None,
    factuality_fn: FactualityFn | None = None,
    relevance_fn: RelevanceFn | None = None,
    lang: str = "en",
) -> LossResult:
    """Weighted distance of generated texts to human targets (formula in the module doc).

    Args:
        originals: source texts.
        humans: human texts, one per original; used for the targets when `targets` is None
            (may be None when `targets` is given).
        generated: generated texts, one per original.
        weights: ``[relevance, factuality, fkgl, smog, dale_chall]``, >= 0, summing to 1.
        targets: calibration targets (object, dict, or JSON path from `calibrate`).
        factuality_fn: ``(originals, texts) -> FactualityResult | list[float]``; default
            AlignScore (needs a checkpoint). Pass the LLM-judge fallback here.
        relevance_fn: ``(originals, texts) -> list[float]``; default BERTScore F1.
        lang: language of the texts for readability.

    Returns:
        ``LossResult`` (mean loss, per-item losses, terms, raw metrics, targets used).

    Raises:
        InvalidInputError: bad weights, empty or mismatched lists, malformed targets.
        ConfigurationError: the default factuality has no AlignScore checkpoint.
    """
    w = validate_weights(weights)
    origs, gens = check_pairs("originals", originals, "generated", generated)
    if targets is None:
        if humans is None:
            raise InvalidInputError(
                "pass `humans` (human texts, one per original) or `targets` "
                "(from `evalserve calibrate`): the loss needs human targets"
            )
        _, hums = check_pairs("originals", originals, "humans", humans)
        human_values, _ = measure(origs, hums, relevance_fn, factuality_fn, lang)
        resolved = targets_from_values(human_values, {"source": "humans"})
    else:
        if humans is not None:
            check_pairs("originals", originals, "humans", humans)
        resolved = _resolve_targets(targets)
    values, method = measure(origs, gens, relevance_fn, factuality_fn, lang)
    terms = loss_terms(values, resolved)
    losses = [
        math.fsum(wk * terms[m][i] for wk, m in zip(w, METRICS)) for i in range(len(gens))
    ]
    return LossResult(
        loss=fmean(losses),
        losses=losses,
        terms=terms,
        metrics=values,
        targets=resolved,
        weights=w,
        factuality_method=method,
    )
