"""Agreement of a judge's scores with human grades: the numbers a teacher or an ML team asks for.

``agreement(judge, human)`` compares the items that have both a judge score and a human grade
(an item missing either is skipped and counted) and returns an `AgreementResult`:

- on scores **rounded to the scale** (nearest scale value, halves up; a judge's
  `score_expected` of 3.4 counts as 3): quadratic-weighted κ (QWK), Cohen's κ unweighted and
  linear (scikit-learn ``cohen_kappa_score``; weights count scale *steps*), Krippendorff's α
  at the ordinal level (``krippendorff.alpha``), exact and adjacent (at most one scale step
  apart) agreement, and the confusion matrix (``sklearn.metrics.confusion_matrix``; rows are
  the human grades, columns the judge's);
- on the **raw values**: Spearman and Pearson correlation with their p-values (scipy), the
  mean absolute error, the bias (mean of judge − human), and the items that differ most;
- percentile bootstrap confidence intervals (``scipy.stats.bootstrap``, seeded: the same
  inputs give the same intervals) for QWK and Spearman, both from one draw of resampled
  pairs, each resample scored from its pair counts (`_PairStatistics`: fast on 100k items);
  ``None`` when some resample leaves the statistic undefined (constant scores).

A number that is undefined on the data (a correlation of constant ratings, a κ when both
raters use one grade, κ, α and correlations on fewer than two pairs) is ``None``, never NaN, so
``to_dict()`` is strict JSON. scikit-learn, scipy and krippendorff are imported when
``agreement`` is first called.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evalserve.errors import InvalidInputError

__all__ = ["AgreementResult", "Disagreement", "agreement", "round_to_scale"]

Number = int | float


@dataclass(frozen=True)
class Disagreement:
    """One item where the judge and the human differ: `difference` is judge − human."""

    id: str
    judge: Number
    human: Number
    difference: float


@dataclass(frozen=True)
class AgreementResult:
    """Agreement of a judge with human grades over `n` paired items (module doc)."""

    n: int
    """Items with both a judge score and a human grade (the pairs every number is over)."""
    items: int
    missing_human: int
    missing_judge: int
    scale: tuple[Number, ...]
    """The scale the scores were rounded to; the confusion matrix's labels, in order."""
    qwk: float | None
    kappa: float | None
    kappa_linear: float | None
    krippendorff_alpha: float | None
    spearman: float | None
    spearman_p: float | None
    pearson: float | None
    pearson_p: float | None
    exact: float | None
    adjacent: float | None
    mae: float | None
    bias: float | None
    qwk_ci: tuple[float, float] | None
    spearman_ci: tuple[float, float] | None
    confidence: float
    confusion: tuple[tuple[int, ...], ...]
    """`confusion[i][j]`: items the human graded `scale[i]` and the judge `scale[j]`."""
    disagreements: tuple[Disagreement, ...]
    """The items with the largest |judge − human|, largest first (ties in input order)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no NaN or infinity; intervals as `[low, high]`)."""
        out = asdict(self)
        for name in ("qwk_ci", "spearman_ci"):
            out[name] = list(out[name]) if out[name] is not None else None
        out["scale"] = list(self.scale)
        out["confusion"] = {"labels": list(self.scale), "rows": "human", "columns": "judge",
                            "counts": [list(row) for row in self.confusion]}
        out["disagreements"] = [asdict(d) for d in self.disagreements]
        return out


def _label(value: float) -> Number:
    return int(value) if float(value).is_integer() else float(value)


def _value(value: Any, who: str, item: str) -> float | None:
    """A rating as a float; None (missing) for None and NaN."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInputError(f"the {who} rating of item {item!r} must be a number, "
                                f"got {value!r}")
    number = float(value)
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise InvalidInputError(f"the {who} rating of item {item!r} is {number}: give a "
                                f"finite number or leave it empty")
    return number


_NUMBERS = (int, float, np.integer, np.floating)


def _ratings(values: Sequence[Any], who: str, names: list[str]) -> np.ndarray:
    """The ratings as floats, NaN for missing (None or NaN). A rating that is not a number
    (a string, a bool) or is infinite raises `InvalidInputError` naming the item."""
    kinds = {type(v) for v in values}
    if any(k is bool or (k is not type(None) and not issubclass(k, _NUMBERS)) for k in kinds):
        for i, v in enumerate(values):
            _value(v, who, names[i])  # raises on the first that is not a number
    out = np.array([np.nan if v is None else v for v in values], dtype=float)
    infinite = np.flatnonzero(np.isinf(out))
    if len(infinite):
        _value(values[infinite[0]], who, names[infinite[0]])  # raises, naming the item
    return out


def _scale(scale: Sequence[Number] | None, values: np.ndarray) -> np.ndarray:
    if scale is not None:
        points = np.unique(np.asarray([float(s) for s in scale], dtype=float))
        if len(points) < 2 or not np.all(np.isfinite(points)):
            raise InvalidInputError(f"scale {list(scale)!r}: give at least two finite values, "
                                    f"e.g. [1, 2, 3, 4, 5]")
        return points
    if values.size == 0:
        return np.asarray([], dtype=float)
    return np.arange(math.floor(values.min()), math.ceil(values.max()) + 1, dtype=float)


def round_to_scale(values: Sequence[float], scale: Sequence[float]) -> np.ndarray:
    """The index in `scale` (sorted) of the scale value nearest each value (halves up)."""
    points = np.asarray(scale, dtype=float)
    distance = np.abs(np.asarray(values, dtype=float)[:, None] - points[None, :])
    # argmin picks the first of equal distances; scanning the scale from the top picks the higher
    return len(points) - 1 - np.argmin(distance[:, ::-1], axis=1)


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _kappa_batch(h: np.ndarray, j: np.ndarray, k: int, weights: str | None,
                 ) -> np.ndarray:
    """scikit-learn's `cohen_kappa_score` (same formula, same order of operations) over a
    batch of resamples at once: `h`, `j` are (..., n) scale indices. One sklearn call costs
    ~3 ms of input checks, which made a 1,000-resample bootstrap take seconds per score."""
    lead = h.shape[:-1]
    h2, j2 = h.reshape(-1, h.shape[-1]), j.reshape(-1, j.shape[-1])
    batch = h2.shape[0]
    codes = (np.arange(batch)[:, None] * k * k + h2 * k + j2).ravel()
    confusion = np.bincount(codes, minlength=batch * k * k).reshape(batch, k, k).astype(float)
    return _kappa_of(confusion, k, weights).reshape(lead)


def _kappa_of(confusion: np.ndarray, k: int, weights: str | None) -> np.ndarray:
    """Cohen's κ of each (k, k) confusion matrix of a (batch, k, k) stack, as scikit-learn's
    `cohen_kappa_score` computes it from its confusion matrix."""
    sum0, sum1 = confusion.sum(axis=1), confusion.sum(axis=2)
    expected = sum0[:, :, None] * sum1[:, None, :] / sum0.sum(axis=1)[:, None, None]
    steps = np.zeros((k, k)) + np.arange(k)
    if weights is None:
        w_mat = 1.0 - np.eye(k)
    else:
        w_mat = np.abs(steps - steps.T) if weights == "linear" else (steps - steps.T) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - (w_mat * confusion).sum(axis=(1, 2)) / (w_mat * expected).sum(axis=(1, 2))


def _codes(values: np.ndarray) -> np.ndarray:
    """Each value's index among the distinct values, sorted (its dense rank, from 0)."""
    return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.intp)


def _grouped(counts: np.ndarray, groups: np.ndarray, size: int) -> np.ndarray:
    """(batch, size) sums of the (batch, m) `counts` over the `groups` (m,) they fall in."""
    batch = counts.shape[0]
    where = (np.arange(batch)[:, None] * size + groups[None, :]).ravel()
    return np.bincount(where, weights=counts.ravel(), minlength=batch * size).reshape(batch,
                                                                                     size)


class _PairStatistics:
    """QWK and Spearman's ρ of bootstrap resamples, from how often each distinct pair is drawn.

    The items are coded by their distinct (human, judge) pair: a resample of pair ids is
    counted (one `bincount`), and both statistics follow from the counts: the confusion
    matrix for QWK (`_kappa_of`, scikit-learn's formula), and for ρ the average-tie ranks of
    each distinct rating (the count below it plus (its count + 1) / 2, what
    `scipy.stats.rankdata` gives) and their count-weighted Pearson correlation, as
    `scipy.stats.spearmanr` computes it. No sort and no gather per resample, so the cost is
    that of drawing the resamples (distinct pairs are at most k² for scale scores)."""

    def __init__(self, hi: np.ndarray, ji: np.ndarray, h: np.ndarray, j: np.ndarray, k: int,
                 qwk: bool, spearman: bool) -> None:
        hc, jc = _codes(h), _codes(j)
        self.h_size, self.j_size = int(hc.max()) + 1, int(jc.max()) + 1
        # one int64 per pair (a sort of structured rows would hold the GIL for long)
        pair = ((hi.astype(np.int64) * k + ji) * self.h_size + hc) * self.j_size + jc
        distinct, inverse = np.unique(pair, return_inverse=True)
        self.ids = inverse.reshape(-1).astype(np.intp)
        self.j_codes = distinct % self.j_size
        self.h_codes = distinct // self.j_size % self.h_size
        self.cells = distinct // (self.j_size * self.h_size)
        self.k, self.qwk, self.spearman = k, qwk, spearman

    @property
    def outputs(self) -> int:
        return int(self.qwk) + int(self.spearman)

    def __call__(self, ids: np.ndarray, axis: int = -1) -> np.ndarray:
        """(outputs, ...) statistics of the (..., n) resamples of pair ids."""
        lead = ids.shape[:-1]
        rows = ids.reshape(-1, ids.shape[-1])
        batch, m = rows.shape[0], len(self.cells)
        counts = np.bincount((np.arange(batch)[:, None] * m + rows).ravel(),
                             minlength=batch * m).reshape(batch, m).astype(float)
        values = []
        if self.qwk:
            confusion = _grouped(counts, self.cells, self.k * self.k)
            values.append(_kappa_of(confusion.reshape(batch, self.k, self.k), self.k,
                                    "quadratic"))
        if self.spearman:
            values.append(self._rho(counts, rows.shape[1]))
        return np.stack(values, axis=0).reshape((len(values), *lead))

    def _rho(self, counts: np.ndarray, n: int) -> np.ndarray:
        mean = (n + 1) / 2.0  # of average-tie ranks, whatever the ties
        deviations = []
        for codes, size in ((self.h_codes, self.h_size), (self.j_codes, self.j_size)):
            per_value = _grouped(counts, codes, size)
            ranks = np.cumsum(per_value, axis=1) - (per_value - 1) / 2.0 - mean
            deviations.append((per_value, ranks, np.take_along_axis(
                ranks, np.broadcast_to(codes, counts.shape), axis=1)))
        (h_count, h_rank, h_pair), (j_count, j_rank, j_pair) = deviations
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = (counts * h_pair * j_pair).sum(axis=1) / np.sqrt(
                (h_count * h_rank ** 2).sum(axis=1) * (j_count * j_rank ** 2).sum(axis=1))
        return np.clip(rho, -1.0, 1.0)


def _bootstrap(hi: np.ndarray, ji: np.ndarray, h: np.ndarray, j: np.ndarray, k: int,
               qwk: bool, spearman: bool, *, confidence: float, n_resamples: int, seed: int,
               ) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Percentile bootstrap intervals of QWK and Spearman's ρ (`scipy.stats.bootstrap`,
    vectorised, seeded), both from the same resamples of the items; None for a statistic not
    asked for, or undefined on some resample. The one sample resampled is the items' pair ids
    (`_PairStatistics`): the same draws as resampling the pairs (`paired=True`)."""
    from scipy.stats import bootstrap

    if not (qwk or spearman):
        return None, None
    statistic = _PairStatistics(hi, ji, h, j, k, qwk, spearman)
    # resamples are drawn and scored in batches of at most ~1M ratings (memory stays bounded)
    batch = max(1, min(n_resamples, 1_000_000 // len(hi)))
    result = bootstrap((statistic.ids,), statistic, vectorized=True, n_resamples=n_resamples,
                       batch=batch, confidence_level=confidence, method="percentile",
                       rng=np.random.default_rng(seed))
    lows = np.atleast_1d(result.confidence_interval.low)
    highs = np.atleast_1d(result.confidence_interval.high)
    found = []
    for low, high in zip(lows, highs, strict=True):
        low, high = _finite(low), _finite(high)
        found.append(None if low is None or high is None else (low, high))
    intervals = iter(found)
    return (next(intervals) if qwk else None), (next(intervals) if spearman else None)


def _correlation(fn: Any, h: np.ndarray, j: np.ndarray) -> tuple[float | None, float | None]:
    if len(h) < 2:
        return None, None
    result = fn(h, j)
    value = _finite(result.statistic)
    return (None, None) if value is None else (value, _finite(result.pvalue))


def _disagreements(ids: list[str], h: np.ndarray, j: np.ndarray, top: int,
                   ) -> tuple[Disagreement, ...]:
    difference = j - h
    differing = np.flatnonzero(difference != 0)
    # a stable sort: equal differences stay in input order
    order = differing[np.argsort(-np.abs(difference[differing]), kind="stable")][:top]
    return tuple(Disagreement(id=ids[i], judge=_label(j[i]), human=_label(h[i]),
                              difference=float(difference[i])) for i in order)


def agreement(
    judge: Sequence[Number | None],
    human: Sequence[Number | None],
    *,
    scale: Sequence[Number] | None = None,
    ids: Sequence[str] | None = None,
    top_disagreements: int = 10,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> AgreementResult:
    """Agreement of `judge`'s scores with the `human` grades of the same items (module doc).

    `scale`: the grades' possible values (e.g. `[1, 2, 3, 4, 5]`); default the integers from
    the lowest to the highest rating seen. A rating outside the scale raises
    `InvalidInputError`. `ids` name the items (default their index) in `disagreements`.
    `n_resamples=0` skips the bootstrap intervals.
    """
    if len(judge) != len(human):
        raise InvalidInputError(f"{len(judge)} judge scores but {len(human)} human grades: "
                                f"give one of each per item")
    names = [str(i) for i in range(len(judge))] if ids is None else [str(i) for i in ids]
    if len(names) != len(judge):
        raise InvalidInputError(f"{len(names)} ids for {len(judge)} items")
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence {confidence}: give a level between 0 and 1, "
                                f"e.g. 0.95")
    if n_resamples < 0 or top_disagreements < 0:
        raise InvalidInputError("n_resamples and top_disagreements must be 0 or more")
    judged = _ratings(judge, "judge", names)
    graded = _ratings(human, "human", names)
    paired = ~np.isnan(judged) & ~np.isnan(graded)
    both = np.flatnonzero(paired)
    j, h = judged[both], graded[both]
    points = _scale(scale, np.concatenate([h, j]))
    for who, values in (("human", h), ("judge", j)):
        outside = (np.flatnonzero((values < points[0]) | (values > points[-1]))
                   if len(points) else [])
        if len(outside):
            first = both[outside[0]]
            raise InvalidInputError(
                f"the {who} rating {(judged if who == 'judge' else graded)[first]} of "
                f"item {names[first]!r} is outside the scale {_label(points[0])}-"
                f"{_label(points[-1])}: give the scale the ratings use")
    return _compute(h, j, points, [names[i] for i in both], items=len(names),
                    missing_human=int(np.isnan(graded).sum()),
                    missing_judge=int(np.isnan(judged).sum()), top=top_disagreements,
                    confidence=confidence, n_resamples=n_resamples, seed=seed)


def _compute(h: np.ndarray, j: np.ndarray, points: np.ndarray, ids: list[str], *, items: int,
             missing_human: int, missing_judge: int, top: int, confidence: float,
             n_resamples: int, seed: int) -> AgreementResult:
    import krippendorff
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    n, k = len(h), len(points)
    labels = list(range(k))
    hi = round_to_scale(h, points) if n else np.asarray([], dtype=int)
    ji = round_to_scale(j, points) if n else np.asarray([], dtype=int)
    kappas: dict[str | None, float | None] = {None: None, "linear": None, "quadratic": None}
    alpha = qwk_ci = spearman_ci = None
    confusion = np.zeros((k, k), dtype=int)
    # Undefined statistics (constant ratings, one grade in common) come back NaN, which
    # `_finite` turns into None; the libraries' warnings about them are expected here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n:
            confusion = confusion_matrix(hi, ji, labels=labels)
        if n >= 2 and k >= 2:
            for weights in kappas:
                kappas[weights] = _finite(cohen_kappa_score(hi, ji, weights=weights,
                                                            labels=labels))
            alpha = _finite(krippendorff.alpha(reliability_data=[hi, ji],
                                               level_of_measurement="ordinal",
                                               value_domain=labels))
        spearman, spearman_p = _correlation(spearmanr, h, j)
        pearson, pearson_p = _correlation(pearsonr, h, j)
        if n_resamples:
            qwk_ci, spearman_ci = _bootstrap(hi, ji, h, j, k, kappas["quadratic"] is not None,
                                             spearman is not None, confidence=confidence,
                                             n_resamples=n_resamples, seed=seed)
    return AgreementResult(
        n=n, items=items, missing_human=missing_human, missing_judge=missing_judge,
        scale=tuple(_label(p) for p in points),
        qwk=kappas["quadratic"], kappa=kappas[None], kappa_linear=kappas["linear"],
        krippendorff_alpha=alpha, spearman=spearman, spearman_p=spearman_p, pearson=pearson,
        pearson_p=pearson_p,
        exact=float(np.mean(hi == ji)) if n else None,
        adjacent=float(np.mean(np.abs(hi - ji) <= 1)) if n else None,
        mae=float(np.mean(np.abs(j - h))) if n else None,
        bias=float(np.mean(j - h)) if n else None,
        qwk_ci=qwk_ci, spearman_ci=spearman_ci, confidence=confidence,
        confusion=tuple(tuple(int(c) for c in row) for row in confusion),
        disagreements=_disagreements(ids, h, j, top),
    )
