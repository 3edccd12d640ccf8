"""The job report (judge/report.py): its agreement section is `metrics.agreement` on the
records (exact equality), sections appear only when they apply, and `flat_metrics` names the
report's finite numbers for MLflow."""

from __future__ import annotations

import json
import math
import random

from evalserve.judge.report import agreement_report, flat_metrics, human_field, job_report
from evalserve.judge.rubric import load_rubric
from evalserve.metrics.agreement import agreement

RUBRIC = load_rubric("teacher-eval-ca").model_dump(mode="json")  # id_alumno, nota, 0-5


def _records(n: int = 30, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        human = rng.randint(0, 5)
        score = max(0, min(5, human + rng.choice([-2, -1, 0, 0, 1])))
        record = {"id_alumno": f"A{i:03d}", "nota": score, "feedback": f"fb {i}",
                  "status": "scored", "score_expected": min(5, score + rng.random() * 0.4)}
        if i % 4:  # every fourth item has no human grade
            record["human_score"] = float(human)
        out.append(record)
    return out


def _expected(records: list[dict], key: str) -> dict:
    result = agreement([r.get(key) for r in records], [r.get("human_score") for r in records],
                       scale=RUBRIC["scale"], ids=[r["id_alumno"] for r in records]).to_dict()
    feedback = {r["id_alumno"]: r.get("feedback") for r in records}
    for row in result["disagreements"]:
        row["feedback"] = feedback[row["id"]]
    return result


def test_the_agreement_section_is_metrics_agreement_on_the_records() -> None:
    records = _records()
    report = job_report(records, RUBRIC, {})
    assert set(report) == {"agreement"}
    assert report["agreement"]["score"] == _expected(records, "nota")
    assert report["agreement"]["score_expected"] == _expected(records, "score_expected")
    score = report["agreement"]["score"]
    assert (score["n"], score["items"], score["missing_human"]) == (22, 30, 8)
    assert score["scale"] == [0, 1, 2, 3, 4, 5]
    assert score["disagreements"] and all(d["feedback"].startswith("fb ")
                                          for d in score["disagreements"])
    json.dumps(report, allow_nan=False)  # strict JSON


def test_a_rubric_object_and_its_dict_give_the_same_report() -> None:
    records = _records(12)
    assert job_report(records, load_rubric("teacher-eval-ca"), {}) == job_report(
        records, RUBRIC, {})


def test_no_human_grade_means_no_agreement_section() -> None:
    records = [{k: v for k, v in r.items() if k != "human_score"} for r in _records(10)]
    assert agreement_report(records, RUBRIC) is None
    assert job_report(records, RUBRIC, {}) == {}
    assert flat_metrics({}) == {}


def test_score_expected_is_compared_only_where_records_have_it() -> None:
    records = [{k: v for k, v in r.items() if k != "score_expected"} for r in _records(10)]
    assert set(job_report(records, RUBRIC, {})["agreement"]) == {"score"}


def test_unscored_and_error_items_count_as_missing_judge_scores() -> None:
    records = _records(8)
    records[1] = {"id_alumno": records[1]["id_alumno"], "status": "error", "human_score": 5.0,
                  "error": {"message": "boom"}}
    records[2]["nota"] = None
    section = job_report(records, RUBRIC, {})["agreement"]["score"]
    assert section == _expected(records, "nota")
    assert section["missing_judge"] == 2


def test_a_grade_outside_the_scale_is_an_error_section_not_a_failure() -> None:
    records = _records(6)
    records[1]["human_score"] = 42.0
    report = job_report(records, RUBRIC, {})
    assert report["agreement"]["score"] == {
        "error": "the human rating 42.0 of item 'A001' is outside the scale 0-5: give the "
                 "scale the ratings use"}
    assert "agreement/qwk" not in flat_metrics(report)


def test_options_set_the_bootstrap() -> None:
    records = _records()
    report = job_report(records, RUBRIC, {"n_resamples": 0})
    assert report["agreement"]["score"]["qwk_ci"] is None


def test_the_human_field_is_the_rubrics_or_human_score() -> None:
    assert human_field(RUBRIC) == "human_score"
    assert human_field({**RUBRIC, "human_field": "nota_professor"}) == "nota_professor"


def test_jury_and_samples_sections_come_from_their_summaries() -> None:
    from evalserve.judge.jury import jury_summary, samples_summary

    records = _records(6)
    for i, r in enumerate(records):
        r["judges"] = [{"judge": "a", "status": "scored", "score": r["nota"]},
                       {"judge": "b", "status": "scored", "score": min(5, r["nota"] + i % 2)}]
        r["aggregate"] = "mean"
        r["samples"], r["reducer"], r["spread"] = [r["nota"], r["nota"]], "mean", 0.0
    report = job_report(records, RUBRIC, {})
    assert report["jury"] == jury_summary(records, scale=RUBRIC["scale"], id_field="id_alumno")
    assert report["samples"] == samples_summary(records)
    flat = flat_metrics(report)
    assert flat["samples/agreeing_share"] == 1.0 and flat["samples/k"] == 2.0
    assert flat["jury/per_judge/a/agreement/qwk"] == report["jury"]["per_judge"]["a"][
        "agreement"]["qwk"]


def test_flat_metrics_names_every_finite_number() -> None:
    records = _records()
    report = job_report(records, RUBRIC, {})
    flat = flat_metrics(report)
    score, expected = report["agreement"]["score"], report["agreement"]["score_expected"]
    for name, key in [("qwk", "qwk"), ("kappa", "kappa"), ("kappa_linear", "kappa_linear"),
                      ("alpha", "krippendorff_alpha"), ("spearman", "spearman"),
                      ("pearson", "pearson"), ("exact", "exact"), ("adjacent", "adjacent"),
                      ("mae", "mae"), ("bias", "bias"), ("n", "n")]:
        assert flat[f"agreement/{name}"] == score[key]
        assert flat[f"agreement_expected/{name}"] == expected[key]
    assert (flat["agreement/qwk_ci_low"], flat["agreement/qwk_ci_high"]) == tuple(
        score["qwk_ci"])
    assert all(isinstance(v, float) and math.isfinite(v) for v in flat.values())


def test_flat_metrics_skips_undefined_numbers_and_flattens_nested_sections() -> None:
    report = {"agreement": {"score": {"qwk": None, "exact": 1.0, "qwk_ci": None,
                                      "confusion": {}}},
              "pairwise": {"pairs": 4, "consistency_rate": 0.5, "win_rate": {"sys/a b": 0.75},
                           "leaderboard": [{"system": "x", "rating": 1.5, "rank": 1,
                                            "ci_low": None}],
                           "note": "text", "flag": True}}
    assert flat_metrics(report) == {
        "agreement/exact": 1.0, "pairwise/pairs": 4.0, "pairwise/consistency_rate": 0.5,
        "pairwise/win_rate/sys/a b": 0.75, "pairwise/leaderboard/x/rating": 1.5,
        "pairwise/leaderboard/x/rank": 1.0}


def test_the_pairwise_section_is_pairwise_summary_and_flattens_per_system() -> None:
    from evalserve.judge.pairwise import pairwise_summary

    pairs = []
    for i, (a, b, ab, ba) in enumerate([("x", "y", "A", "A"), ("x", "y", "A", "B"),
                                        ("y", "z", "B", "B"), ("x", "z", "tie", "tie")]):
        verdict = ab if ab == ba else "tie"
        pairs.append({"id": f"p{i}", "score": {"A": 1.0, "B": 0.0, "tie": 0.5}[verdict],
                      "feedback": "", "status": "scored", "verdict": verdict,
                      "verdicts": {"ab": ab, "ba": ba}, "consistent": ab == ba,
                      "first_position_wins": int(ab == "A") + int(ba == "B"),
                      "verdict_probs": None, "system_a": a, "system_b": b})
    rubric = {"name": "pw", "mode": "pairwise", "scale": [0, 1]}
    report = job_report(pairs, rubric, {})
    assert set(report) == {"pairwise"}
    assert report["pairwise"] == json.loads(json.dumps(pairwise_summary(pairs)))
    flat = flat_metrics(report)
    assert flat["pairwise/consistency_rate"] == report["pairwise"]["consistency_rate"] == 0.75
    assert flat["pairwise/win_rate/x"] == report["pairwise"]["win_rate"]["x"]


def test_pairwise_human_preferences_are_compared_on_win_tie_loss() -> None:
    records = [{"id": f"p{i}", "score": s, "status": "scored", "verdict": "A",
                "verdicts": {"ab": "A", "ba": "A"}, "human_score": h}
               for i, (s, h) in enumerate([(1.0, 1.0), (0.5, 1.0), (0.0, 0.0), (1.0, 0.5)])]
    section = job_report(records, {"name": "pw", "mode": "pairwise", "scale": [0, 1]},
                         {})["agreement"]["score"]
    assert section["scale"] == [0, 0.5, 1]
    assert (section["exact"], section["adjacent"]) == (0.5, 1.0)
