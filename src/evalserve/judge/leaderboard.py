"""A Bradley–Terry leaderboard of systems from pairwise verdicts, with bootstrap intervals.

Fitted with `choix` (iterative Luce spectral ranking on the matrix of wins, lightly
regularised so that a system that never lost still gets a finite rating). A tie counts half a
win for each side. `rating` is the log-strength, centred on 0: system i beats system j with
probability 1 / (1 + exp(rating_j - rating_i)). The 95% interval is the 2.5-97.5 percentile of
the ratings refitted on comparisons resampled with replacement (seeded: the same verdicts give
the same leaderboard).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["bradley_terry"]

#: Regularisation of the fit (a prior of `ALPHA` virtual comparisons between each pair).
ALPHA = 0.01
RESAMPLES = 200


def _fit(counts: Any, n: int) -> Any:
    import choix
    import numpy as np

    matrix = np.zeros((n, n))
    np.add.at(matrix, (counts[0], counts[1]), counts[2])
    return choix.ilsr_pairwise_dense(matrix, alpha=ALPHA)


def bradley_terry(
    comparisons: Sequence[tuple[str, str, float]], *, resamples: int = RESAMPLES, seed: int = 0,
) -> list[dict[str, Any]]:
    """`[{"system", "rating", "ci_low", "ci_high", "rank"}]`, best first, from
    `(system_a, system_b, score)` rows (score 1: A won, 0.5: tie, 0: B won); [] with fewer
    than two systems. Rows comparing a system with itself are left out."""
    import numpy as np

    rows = [(str(a), str(b), float(s)) for a, b, s in comparisons if a != b]
    systems = sorted({a for a, _, _ in rows} | {b for _, b, _ in rows})
    if len(systems) < 2:
        return []
    index = {name: i for i, name in enumerate(systems)}
    # Each comparison as (winner, loser, weight) cells: a win is 1 to the winner, a tie 0.5
    # each way. Cells of comparison k are `cells[:, owner == k]`.
    winners, losers, weights, owner = [], [], [], []
    for k, (a, b, score) in enumerate(rows):
        ia, ib = index[a], index[b]
        if score > 0:
            winners.append(ia), losers.append(ib), weights.append(score), owner.append(k)
        if score < 1:
            winners.append(ib), losers.append(ia), weights.append(1 - score), owner.append(k)
    cells = np.array([winners, losers, weights], dtype=float)
    owners = np.array(owner)
    n = len(systems)
    ratings = _fit((cells[0].astype(int), cells[1].astype(int), cells[2]), n)
    rng = np.random.default_rng(seed)
    boot = np.empty((resamples, n))
    for r in range(resamples):
        times = np.bincount(rng.integers(0, len(rows), len(rows)), minlength=len(rows))
        weight = cells[2] * times[owners]
        boot[r] = _fit((cells[0].astype(int), cells[1].astype(int), weight), n)
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    order = sorted(range(n), key=lambda i: (-ratings[i], systems[i]))
    return [
        {"system": systems[i], "rating": round(float(ratings[i]), 4),
         "ci_low": round(float(low[i]), 4), "ci_high": round(float(high[i]), 4), "rank": rank}
        for rank, i in enumerate(order, start=1)
    ]
