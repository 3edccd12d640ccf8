"""Juries and repeated sampling: how several scores of one item become one, and what a job's
judges and samples say about themselves.

- `combine(scores, how)`: one item's scores made one: `mean`, `median`, or `majority` /
  `mode` (the most frequent score; a tie goes to the tied score closest to the median of all
  the scores, the lower one when two are as close, so 3, 4, 5 gives 4 and 2, 2, 5, 5 gives 2).
- `spread(scores)`: the population standard deviation (0.0 when all agree).
- `jury_summary(records)`: Krippendorff's α (ordinal, ``krippendorff.alpha``) across the
  judges, and each judge's counts, mean and agreement with the human grades
  (`evalserve.metrics.agreement.agreement`) when records carry `human_score`.
- `samples_summary(records)`: the judge's self-consistency over repeated samples (each
  judge's, when a jury samples).

Records are the result records of jobs with the `judges` or `samples` option (their keys are
those of the trust contract: `judges`, `aggregate`, `judges_successful`; `samples`, `reducer`,
`spread`; a jury that samples has `samples` and `spread` in each judge's entry and `reducer`
in the record). Every number that is undefined on the data is None, never NaN, so the summaries are
strict JSON.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from evalserve.errors import InvalidInputError

__all__ = ["AGGREGATES", "REDUCERS", "MAX_SAMPLES", "combine", "spread", "jury_summary",
           "samples_summary"]

#: How a jury's scores of one item become the item's score (job option `aggregate`).
AGGREGATES = ("mean", "median", "majority")
#: How an item's repeated samples become its score (job option `reducer`).
REDUCERS = ("mean", "median", "mode")
#: Most samples per item (job option `samples`).
MAX_SAMPLES = 20

Number = int | float


def _plurality(scores: Sequence[Number]) -> Number:
    counts = Counter(scores)
    top = max(counts.values())
    tied = sorted(s for s, c in counts.items() if c == top)
    if len(tied) == 1:
        return tied[0]
    middle = statistics.median(scores)
    return min(tied, key=lambda s: (abs(s - middle), s))


def combine(scores: Sequence[Number], how: str) -> Number | None:
    """The scores of one item made one by `how` (module doc); None for no scores."""
    if not scores:
        return None
    if how == "mean":
        return statistics.fmean(scores)
    if how == "median":
        return statistics.median(scores)
    if how in ("majority", "mode"):
        return _plurality(scores)
    raise InvalidInputError(f"unknown aggregate {how!r}: use one of "
                            f"{', '.join(sorted({*AGGREGATES, *REDUCERS}))}")


def spread(scores: Sequence[Number]) -> float | None:
    """Population standard deviation of `scores`: 0.0 when they all agree, None for none."""
    if not scores:
        return None
    return float(statistics.pstdev(scores)) if len(scores) > 1 else 0.0


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _alpha(matrix: list[list[float | None]], scale: Sequence[Number] | None) -> float | None:
    """Ordinal Krippendorff's α of a judges x items matrix (None: missing), or None where it
    is undefined (fewer than two judges, no item scored twice, a single value seen)."""
    import krippendorff
    import numpy as np

    if len(matrix) < 2 or not matrix[0]:
        return None
    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    if not (np.sum(~np.isnan(data), axis=0) >= 2).any():
        return None
    domain = None if scale is None else sorted(scale)
    try:
        value = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                   value_domain=domain)
    except (ValueError, ZeroDivisionError):
        return None
    return float(value) if math.isfinite(value) else None


def jury_summary(records: Sequence[dict[str, Any]], *, scale: Sequence[Number] | None = None,
                 id_field: str | None = None) -> dict[str, Any] | None:
    """What a jury job's judges did, or None when no record carries `judges`.

    `{"judges": [names in the job's order], "aggregate", "items": records with judges,
    "alpha": ordinal Krippendorff's α across the judges over those items (a judge that did not
    score an item is missing there), "per_judge": {name: {"scored", "unscored", "errors",
    "mean_score", "agreement"}}}`, where `agreement` is
    `evalserve.metrics.agreement.agreement(...).to_dict()` of the judge's scores against the
    records' `human_score` (None when no record has one). `scale` (the rubric's) fixes the
    value domain of α and of the agreement; default the values seen. `id_field` (the rubric's)
    names the items in the agreement's disagreements; default `id`, else the index.
    """
    jury = [r for r in records if isinstance(r.get("judges"), list)]
    if not jury:
        return None
    names: list[str] = []
    for record in jury:
        for entry in record["judges"]:
            if entry.get("judge") not in names:
                names.append(entry.get("judge"))
    scores: dict[str, list[float | None]] = {name: [] for name in names}
    per_judge: dict[str, dict[str, Any]] = {
        name: {"scored": 0, "unscored": 0, "errors": 0} for name in names}
    for record in jury:
        entries = {e.get("judge"): e for e in record["judges"]}
        for name in names:
            entry = entries.get(name, {})
            status = entry.get("status")
            score = _finite(entry.get("score")) if status == "scored" else None
            scores[name].append(score)
            key = {"scored": "scored", "unscored": "unscored"}.get(status, "errors")
            if entry:
                per_judge[name][key] += 1
    humans = [_finite(r.get("human_score")) for r in jury]
    with_human = any(h is not None for h in humans)
    ids = [str(r.get(id_field or "id", i)) for i, r in enumerate(jury)]
    for name in names:
        given = [s for s in scores[name] if s is not None]
        stats = per_judge[name]
        stats["mean_score"] = statistics.fmean(given) if given else None
        stats["agreement"] = (_agreement(scores[name], humans, ids, scale) if with_human
                              else None)
    return {"judges": names, "aggregate": jury[0].get("aggregate"), "items": len(jury),
            "alpha": _alpha([scores[n] for n in names], scale), "per_judge": per_judge}


def _agreement(judge: list[float | None], human: list[float | None], ids: list[str],
               scale: Sequence[Number] | None) -> dict:
    from evalserve.metrics.agreement import agreement

    return agreement(judge, human, scale=scale, ids=ids).to_dict()


def _consistency(sample_lists: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Self-consistency over units of repeated samples (an item's, or one judge's of it)."""
    spreads: list[float] = []
    agreeing = compared = failed = 0
    for samples in sample_lists:
        values = [_finite(s) for s in samples]
        failed += sum(v is None for v in values)
        given = [v for v in values if v is not None]
        unit_spread = spread(given)
        if unit_spread is not None:
            spreads.append(unit_spread)
        if len(given) >= 2:
            compared += 1
            agreeing += len(set(given)) == 1
    return {"failed_samples": failed,
            "mean_spread": statistics.fmean(spreads) if spreads else None,
            "agreeing_share": agreeing / compared if compared else None,
            "compared": compared}


def samples_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The judge's self-consistency over repeated samples, or None when no record carries
    samples.

    `{"k": samples per item, "reducer", "items": records with samples, "failed_samples":
    samples that gave no score, "mean_spread": mean over items of their `spread` (population
    std of the item's successful samples), "agreeing_share": of the items with at least two
    successful samples, the share whose successful samples are all equal, "compared": how
    many such items}`; a mean or share over no item is None.

    A jury that samples (each judge's entry under `judges` carries its `samples`) gives the
    same keys over every (item, judge) pair, plus `"per_judge": {name: {"failed_samples",
    "mean_spread", "agreeing_share", "compared"}}`: each judge's own self-consistency.
    """
    sampled = [r for r in records if isinstance(r.get("samples"), list)]
    if sampled:
        return {"k": max(len(r["samples"]) for r in sampled),
                "reducer": sampled[0].get("reducer"), "items": len(sampled),
                **_consistency([r["samples"] for r in sampled])}
    jury = [r for r in records if isinstance(r.get("judges"), list)
            and any(isinstance(e.get("samples"), list) for e in r["judges"])]
    if not jury:
        return None
    per_judge: dict[str, list[list[Any]]] = {}
    for record in jury:
        for entry in record["judges"]:
            if isinstance(entry.get("samples"), list):
                per_judge.setdefault(str(entry.get("judge")), []).append(entry["samples"])
    units = [samples for lists in per_judge.values() for samples in lists]
    return {"k": max(len(u) for u in units), "reducer": jury[0].get("reducer"),
            "items": len(jury), **_consistency(units),
            "per_judge": {name: _consistency(lists) for name, lists in per_judge.items()}}
