"""Juries and repeated sampling in the judge library: `combine`, `spread`, `jury_summary`
(Krippendorff's alpha across judges, per-judge counts, agreement with human grades) and
`samples_summary`, on hand-computed inputs."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pytest

from evalserve.errors import InvalidInputError
from evalserve.judge.jury import combine, jury_summary, samples_summary, spread
from evalserve.metrics.agreement import agreement


@pytest.mark.parametrize(("scores", "how", "expected"), [
    ([3, 4, 5], "mean", 4.0),
    ([1, 2, 5], "mean", 8 / 3),
    ([1, 2, 5], "median", 2),
    ([1, 2, 4, 5], "median", 3.0),
    ([4, 4, 1], "majority", 4),
    ([3, 4, 5], "majority", 4),  # no majority: the score nearest the median
    ([2, 2, 5, 5], "mode", 2),  # equally near the median 3.5: the lower
    ([1, 5, 5, 4, 4], "mode", 4),  # 4 and 5 tie; the median is 4
    ([3], "mode", 3),
    ([], "mean", None),
])
def test_combine(scores: list[int], how: str, expected: float | None) -> None:
    assert combine(scores, how) == expected


def test_an_unknown_aggregate_names_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match="unknown aggregate 'max': use one of "
                                                "majority, mean, median, mode"):
        combine([1], "max")


def test_spread_is_the_population_std() -> None:
    assert spread([2, 4]) == 1.0
    assert spread([3, 3, 3]) == 0.0
    assert spread([5]) == 0.0
    assert spread([]) is None


def entry(name: str, score: int | None, status: str = "scored") -> dict:
    return {"judge": name, "model": "m", "rubric": "r", "status": status,
            "score": score if status == "scored" else None, "score_expected": None,
            "feedback": None}


def jury_record(i: int, a: int | None, b: int | None, c: int | None,
                human: float | None = None) -> dict:
    judges = [entry("a", a), entry("b", b), entry("c", c, "error" if c is None else "scored")]
    out = {"id": f"i{i}", "score": None, "status": "scored", "judges": judges,
           "aggregate": "median", "judges_successful": sum(s is not None for s in (a, b, c))}
    if human is not None:
        out["human_score"] = human
    return out


GRID = [(1, 1, 2), (2, 2, 2), (3, 4, 3), (4, 4, None), (5, 4, 5), (2, 3, 1)]


def test_jury_summary_counts_each_judge_and_alpha_is_krippendorffs() -> None:
    records = [jury_record(i, *row) for i, row in enumerate(GRID)]
    summary = jury_summary(records)
    assert summary is not None
    data = np.array([[np.nan if v is None else v for v in column] for column in zip(*GRID)],
                    dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert summary["alpha"] == pytest.approx(expected, abs=0, rel=0)
    assert (summary["judges"], summary["aggregate"], summary["items"]) == (
        ["a", "b", "c"], "median", 6)
    assert summary["per_judge"]["a"] == {"scored": 6, "unscored": 0, "errors": 0,
                                         "mean_score": 17 / 6, "agreement": None}
    assert summary["per_judge"]["c"]["scored"] == 5
    assert summary["per_judge"]["c"]["errors"] == 1
    assert summary["per_judge"]["c"]["mean_score"] == 13 / 5
    json.dumps(summary, allow_nan=False)


def test_alpha_with_the_rubric_scale_uses_it_as_the_value_domain() -> None:
    records = [jury_record(i, *row) for i, row in enumerate(GRID)]
    data = np.array([[np.nan if v is None else v for v in column] for column in zip(*GRID)],
                    dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                  value_domain=[0, 1, 2, 3, 4, 5])
    assert jury_summary(records, scale=[0, 1, 2, 3, 4, 5])["alpha"] == expected


def test_each_judges_agreement_with_the_human_grades_is_the_agreement_library() -> None:
    humans = [1, 2, 3, 4, 5, None]
    records = [jury_record(i, *row, human=h) for i, (row, h) in enumerate(zip(GRID, humans))]
    summary = jury_summary(records, scale=[1, 2, 3, 4, 5])
    for name, column in zip("abc", zip(*GRID), strict=True):
        expected = agreement(list(column), humans, scale=[1, 2, 3, 4, 5],
                             ids=[f"{i}" for i in range(6)]).to_dict()
        got = summary["per_judge"][name]["agreement"]
        assert {k: v for k, v in got.items() if k != "disagreements"} == {
            k: v for k, v in expected.items() if k != "disagreements"}
    assert summary["per_judge"]["a"]["agreement"]["n"] == 5
    assert summary["per_judge"]["c"]["agreement"]["n"] == 4  # c failed on item 3
    json.dumps(summary, allow_nan=False)


def test_alpha_is_none_when_undefined_and_no_jury_is_none() -> None:
    one_value = [jury_record(i, 3, 3, 3) for i in range(3)]
    assert jury_summary(one_value)["alpha"] is None
    assert jury_summary([{"id": "x", "score": 3, "status": "scored"}]) is None
    assert jury_summary([]) is None


def sample_record(samples: list[int | None], reducer: str = "median") -> dict:
    given = [s for s in samples if s is not None]
    return {"id": "x", "score": combine(given, reducer), "status": "scored",
            "samples": samples, "reducer": reducer, "spread": spread(given)}


def test_samples_summary_on_hand_computed_items() -> None:
    records = [sample_record([3, 3, 3]),        # agree, spread 0
               sample_record([2, 4, 4, 2][:3]),  # [2, 4, 4]: spread sqrt(8/9)
               sample_record([1, None, 3]),     # spread 1.0
               sample_record([5, None, None])]  # one sample: spread 0, not compared
    summary = samples_summary(records)
    assert summary == {"k": 3, "reducer": "median", "items": 4, "failed_samples": 3,
                       "mean_spread": (0 + (8 / 9) ** 0.5 + 1.0 + 0) / 4,
                       "agreeing_share": 1 / 3, "compared": 3}
    json.dumps(summary, allow_nan=False)


def test_samples_summary_without_samples_is_none_and_all_failed_is_undefined() -> None:
    assert samples_summary([{"id": "x", "score": 1, "status": "scored"}]) is None
    summary = samples_summary([sample_record([None, None])])
    assert (summary["mean_spread"], summary["agreeing_share"], summary["compared"]) == (
        None, None, 0)


def sampling_jury_record(small: list, large: list, human: float | None = None) -> dict:
    """A record of a jury of two judges that sampled (median of each, mean of the two)."""
    entries = []
    for name, samples in (("small", small), ("large", large)):
        given = [s for s in samples if s is not None]
        entries.append({"judge": name, "model": name, "rubric": "r",
                        "status": "scored" if given else "unscored",
                        "score": float(np.median(given)) if given else None,
                        "samples": samples, "spread": spread(given)})
    record = {"id": "x", "score": None, "status": "scored", "judges": entries,
              "aggregate": "mean", "judges_successful": 2, "reducer": "median"}
    if human is not None:
        record["human_score"] = human
    return record


def test_a_sampling_jury_reports_each_judges_self_consistency_and_alpha() -> None:
    records = [sampling_jury_record([3, 3, 3], [2, 4, 4], 3),
               sampling_jury_record([1, None, 3], [5, 5, 5], 4),
               sampling_jury_record([2, 2, 2], [1, 1, 2])]
    summary = samples_summary(records)
    assert (summary["k"], summary["reducer"], summary["items"]) == (3, "median", 3)
    assert summary["per_judge"] == {
        "small": {"failed_samples": 1, "mean_spread": (0 + 1.0 + 0) / 3,
                  "agreeing_share": 2 / 3, "compared": 3},
        "large": {"failed_samples": 0,
                  "mean_spread": ((8 / 9) ** 0.5 + 0 + (2 / 9) ** 0.5) / 3,
                  "agreeing_share": 1 / 3, "compared": 3}}
    assert (summary["failed_samples"], summary["compared"], summary["agreeing_share"]) == (
        1, 6, 3 / 6)
    jury = jury_summary(records, scale=[1, 2, 3, 4, 5])
    assert jury["alpha"] == pytest.approx(krippendorff.alpha(
        reliability_data=[[3, 2, 2], [4, 5, 1]], level_of_measurement="ordinal",
        value_domain=[1, 2, 3, 4, 5]))
    assert jury["per_judge"]["small"]["agreement"]["n"] == 2
    json.dumps(summary, allow_nan=False)
