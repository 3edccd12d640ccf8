"""`evalserve.metrics.agreement`: the numbers equal scikit-learn's, scipy's and krippendorff's
own, called directly; known cases; missing grades; degenerate inputs; strict JSON."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import krippendorff
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from evalserve.errors import InvalidInputError
from evalserve.metrics.agreement import _kappa_batch, agreement, round_to_scale

SCALE = [1, 2, 3, 4, 5]


def _ratings(seed: int, n: int = 60) -> tuple[list[int], list[int]]:
    """A judge that is the human grade plus noise, clipped to 1-5."""
    rng = np.random.default_rng(seed)
    human = rng.integers(1, 6, n)
    judge = np.clip(human + rng.integers(-2, 3, n), 1, 5)
    return [int(v) for v in judge], [int(v) for v in human]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_estimates_equal_the_libraries(seed: int) -> None:
    judge, human = _ratings(seed)
    result = agreement(judge, human, scale=SCALE)
    assert result.n == result.items == 60
    assert result.qwk == cohen_kappa_score(human, judge, weights="quadratic", labels=SCALE)
    assert result.kappa == cohen_kappa_score(human, judge, labels=SCALE)
    assert result.kappa_linear == cohen_kappa_score(human, judge, weights="linear",
                                                    labels=SCALE)
    assert result.krippendorff_alpha == krippendorff.alpha(
        reliability_data=[human, judge], level_of_measurement="ordinal", value_domain=SCALE)
    spearman = stats.spearmanr(human, judge)
    pearson = stats.pearsonr(human, judge)
    assert (result.spearman, result.spearman_p) == (spearman.statistic, spearman.pvalue)
    assert (result.pearson, result.pearson_p) == (pearson.statistic, pearson.pvalue)
    assert result.confusion == tuple(map(tuple, confusion_matrix(human, judge, labels=SCALE)))
    h, j = np.asarray(human), np.asarray(judge)
    assert result.exact == np.mean(h == j)
    assert result.adjacent == np.mean(np.abs(h - j) <= 1)
    assert result.mae == np.mean(np.abs(j - h))
    assert result.bias == np.mean(j - h)


def test_bootstrap_intervals_equal_scipy_bootstrap_over_the_library_statistics() -> None:
    judge, human = _ratings(3, n=40)
    result = agreement(judge, human, scale=SCALE, n_resamples=300, seed=7)

    def qwk(h, j):
        return cohen_kappa_score(h, j, weights="quadratic", labels=SCALE)

    def rho(h, j):
        return stats.spearmanr(h, j).statistic

    for statistic, data, interval in ((qwk, (np.asarray(human), np.asarray(judge)),
                                       result.qwk_ci),
                                      (rho, (np.asarray(human, float), np.asarray(judge, float)),
                                       result.spearman_ci)):
        direct = stats.bootstrap(data, statistic, paired=True, vectorized=False,
                                 n_resamples=300, method="percentile",
                                 rng=np.random.default_rng(7)).confidence_interval
        assert interval == pytest.approx((direct.low, direct.high), abs=1e-12)
    assert result.qwk_ci[0] < result.qwk < result.qwk_ci[1]
    assert result.spearman_ci[0] < result.spearman < result.spearman_ci[1]


def test_bootstrap_is_reproducible_and_depends_on_the_seed() -> None:
    judge, human = _ratings(4)
    first = agreement(judge, human, seed=1, n_resamples=200)
    assert agreement(judge, human, seed=1, n_resamples=200) == first
    assert agreement(judge, human, seed=2, n_resamples=200).qwk_ci != first.qwk_ci


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_batched_kappa_equals_sklearn_on_each_resample(weights: str | None) -> None:
    """The bootstrap's vectorised κ is scikit-learn's κ, resample by resample."""
    rng = np.random.default_rng(5)
    h, j = rng.integers(0, 5, (50, 30)), rng.integers(0, 5, (50, 30))
    batch = _kappa_batch(h, j, 5, weights)
    expected = [cohen_kappa_score(a, b, weights=weights, labels=range(5)) for a, b in zip(h, j)]
    assert batch == pytest.approx(expected, abs=1e-12)


def test_perfect_agreement() -> None:
    scores = [1, 2, 3, 4, 5, 3, 2]
    result = agreement(scores, scores, scale=SCALE)
    assert (result.qwk, result.kappa, result.kappa_linear) == (1.0, 1.0, 1.0)
    assert result.krippendorff_alpha == 1.0
    assert (result.exact, result.adjacent, result.mae, result.bias) == (1.0, 1.0, 0.0, 0.0)
    assert result.qwk_ci == (1.0, 1.0)
    assert result.disagreements == ()
    assert [result.confusion[i][i] for i in range(5)] == [1, 2, 2, 1, 1]


def test_judge_one_above_the_human_is_adjacent_never_exact() -> None:
    human = [1, 2, 3, 4, 1, 2, 3, 4]
    result = agreement([h + 1 for h in human], human, scale=SCALE)
    assert (result.exact, result.adjacent, result.mae, result.bias) == (0.0, 1.0, 1.0, 1.0)
    assert result.spearman == pytest.approx(1.0) and result.pearson == pytest.approx(1.0)
    assert result.qwk < 1.0
    assert result.confusion[0] == (0, 2, 0, 0, 0)


def test_missing_human_grades_and_judge_scores_are_skipped_and_counted() -> None:
    judge = [5, None, 3, 2, 1, float("nan")]
    human = [5, 4, None, 2, 2, 3]
    result = agreement(judge, human, ids=["a", "b", "c", "d", "e", "f"], scale=SCALE)
    assert (result.n, result.items, result.missing_human, result.missing_judge) == (3, 6, 1, 2)
    pairs_only = agreement([5, 2, 1], [5, 2, 2], ids=["a", "d", "e"], scale=SCALE)
    assert result == replace(pairs_only, items=6, missing_human=1, missing_judge=2)
    assert [d.id for d in result.disagreements] == ["e"]


def test_raw_scores_off_the_integer_scale() -> None:
    """score_expected-like values: κ and the confusion matrix on the values rounded to the
    scale (halves up), correlations, MAE and the disagreements on the raw values."""
    judge = [3.4, 2.5, 4.9, 1.2, 4.5]
    human = [3, 3, 5, 1, 4]
    result = agreement(judge, human, scale=SCALE, ids=list("abcde"))
    rounded = [3, 3, 5, 1, 5]
    assert list(round_to_scale(judge, SCALE) + 1) == rounded
    assert result.qwk == cohen_kappa_score(human, rounded, weights="quadratic", labels=SCALE)
    assert result.exact == 0.8
    assert result.spearman == stats.spearmanr(human, judge).statistic
    assert result.mae == pytest.approx(np.mean(np.abs(np.subtract(judge, human))))
    assert [(d.id, d.judge, d.human) for d in result.disagreements][:2] == [("b", 2.5, 3),
                                                                           ("e", 4.5, 4)]
    assert result.disagreements[0].difference == -0.5


def test_the_scale_is_inferred_from_the_ratings() -> None:
    result = agreement([2, 4, 4], [2, 3, 5])
    assert result.scale == (2, 3, 4, 5)
    assert len(result.confusion) == 4


@pytest.mark.parametrize(("judge", "human"), [
    ([], []),
    ([None, 3], [4, None]),
    ([3], [3]),
    ([3, 3, 3], [3, 3, 3]),
    ([1, 2, 3], [3, 3, 3]),
    ([2, 1], [1, 2]),
])
def test_degenerate_inputs_give_none_not_nan_or_errors(judge: list, human: list) -> None:
    result = agreement(judge, human)
    data = result.to_dict()
    json.dumps(data, allow_nan=False)
    numbers = [v for v in data.values() if isinstance(v, float)]
    assert all(math.isfinite(v) for v in numbers)
    if result.n < 2:
        assert (result.qwk, result.spearman, result.pearson, result.qwk_ci) == (None,) * 4
    if len(set(human)) == 1:
        assert result.spearman is None and result.pearson is None


def test_constant_ratings_have_no_correlation_but_an_exact_rate() -> None:
    result = agreement([1, 2, 3], [3, 3, 3], scale=SCALE)
    assert (result.spearman, result.spearman_p, result.pearson, result.spearman_ci) == (
        None, None, None, None)
    assert result.exact == pytest.approx(1 / 3)
    assert result.qwk == 0.0


def test_no_pairs_at_all() -> None:
    result = agreement([None, None], [1, 2], scale=SCALE)
    assert (result.n, result.missing_judge, result.exact, result.mae) == (0, 2, None, None)
    assert result.confusion == ((0,) * 5,) * 5


def test_to_dict_is_strict_json_with_the_confusion_labels() -> None:
    judge, human = _ratings(6, n=20)
    data = json.loads(json.dumps(agreement(judge, human, scale=SCALE).to_dict(),
                                 allow_nan=False))
    assert data["confusion"]["labels"] == SCALE
    assert data["confusion"]["rows"] == "human"
    assert sum(map(sum, data["confusion"]["counts"])) == 20
    assert len(data["qwk_ci"]) == 2
    assert set(data["disagreements"][0]) == {"id", "judge", "human", "difference"}


def test_top_disagreements_are_the_largest_first() -> None:
    result = agreement([1, 5, 3, 2], [5, 4, 3, 4], ids=list("wxyz"), top_disagreements=2)
    assert [(d.id, d.difference) for d in result.disagreements] == [("w", -4.0), ("z", -2.0)]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"judge": [1, 2], "human": [1]}, "2 judge scores but 1 human grades"),
    ({"judge": [1, 7], "human": [1, 2], "scale": SCALE}, "judge rating 7.0 of item '1' is "
                                                          "outside the scale 1-5"),
    ({"judge": [1, "x"], "human": [1, 2]}, "must be a number"),
    ({"judge": [1, 2], "human": [1, 2], "scale": [3]}, "at least two"),
    ({"judge": [1, 2], "human": [1, 2], "confidence": 1.5}, "between 0 and 1"),
    ({"judge": [1, float("inf")], "human": [1, 2]}, "finite number"),
])
def test_invalid_inputs_say_what_to_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        agreement(kwargs.pop("judge"), kwargs.pop("human"), **kwargs)


def test_no_resamples_skips_the_intervals() -> None:
    judge, human = _ratings(8)
    result = agreement(judge, human, n_resamples=0)
    assert result.qwk_ci is None and result.spearman_ci is None and result.qwk is not None
