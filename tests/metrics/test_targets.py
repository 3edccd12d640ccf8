"""Calibration targets: parsing and its messages, the scale floor, the JSON file round trip,
targets from values, and `measure`'s five metrics with pluggable scorers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from evalserve.errors import InvalidInputError
from evalserve.metrics.readability import readability
from evalserve.metrics.targets import (
    METRICS,
    MIN_SCALE,
    CalibrationTargets,
    MetricTarget,
    measure,
    read_targets_file,
    targets_from_values,
)

DATA = {
    "relevance": {"mean": 0.6, "std": 0.1},
    "factuality": {"mean": 0.8, "std": 0.0},
    "fkgl": {"mean": 8.0, "std": 2.0},
    "smog": {"mean": 10.0, "std": 0.05},
    "dale_chall": {"mean": 9.0, "std": 0.5},
    "n": 12,
    "meta": {"source": "train.jsonl"},
}


def test_the_five_metrics_in_loss_order_each_with_a_floor() -> None:
    assert METRICS == ("relevance", "factuality", "fkgl", "smog", "dale_chall")
    assert set(MIN_SCALE) == set(METRICS)


def test_from_dict_and_to_dict_round_trip() -> None:
    targets = CalibrationTargets.from_dict(DATA)
    assert targets.fkgl == MetricTarget(8.0, 2.0)
    assert (targets.n, targets.meta) == (12, {"source": "train.jsonl"})
    assert targets.to_dict() == DATA
    assert CalibrationTargets.from_dict(targets.to_dict()) == targets


def test_scale_is_the_std_floored_per_metric() -> None:
    targets = CalibrationTargets.from_dict(DATA)
    assert targets.scale("relevance") == 0.1
    assert targets.scale("factuality") == 0.01  # std 0 -> the [0, 1] floor
    assert targets.scale("smog") == 0.1  # below a tenth of a grade
    assert targets.get("dale_chall") is targets.dale_chall


def test_a_bare_number_is_a_mean_with_no_spread_and_n_meta_are_optional() -> None:
    targets = CalibrationTargets.from_dict({m: 1 for m in METRICS})
    assert targets.relevance == MetricTarget(1.0, 0.0)
    assert (targets.n, targets.meta) == (0, {})
    odd = CalibrationTargets.from_dict({**DATA, "n": "many", "meta": ["x"]})
    assert (odd.n, odd.meta) == (0, {})
    assert CalibrationTargets.from_dict({**DATA, "fkgl": {"mean": 3}}).fkgl == MetricTarget(3, 0)


@pytest.mark.parametrize(("data", "message"), [
    (["not", "a", "dict"], "targets must be a JSON object with one entry per metric"),
    ({k: v for k, v in DATA.items() if k != "smog"},
     "targets lack 'smog': expected {'smog': {'mean': x, 'std': y}} for each of relevance, "
     "factuality, fkgl, smog, dale_chall (run `evalserve calibrate`)"),
    ({**DATA, "fkgl": {"std": 1.0}}, "targets lack 'fkgl'"),
    ({**DATA, "fkgl": True}, "targets lack 'fkgl'"),
    ({**DATA, "fkgl": {"mean": "high"}}, "targets['fkgl'] must hold numbers"),
    ({**DATA, "fkgl": {"mean": 1.0, "std": None}}, "targets['fkgl'] must hold numbers"),
    ({**DATA, "smog": {"mean": math.inf, "std": 1.0}},
     "targets['smog'] must have a finite mean and std >= 0"),
    ({**DATA, "smog": {"mean": 1.0, "std": -0.1}},
     "targets['smog'] must have a finite mean and std >= 0"),
])
def test_malformed_targets_say_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        CalibrationTargets.from_dict(data)  # type: ignore[arg-type]
    assert info.value.message.startswith(message)


def test_save_and_load_a_targets_file(tmp_path: Path) -> None:
    targets = CalibrationTargets.from_dict(DATA)
    path = targets.save(tmp_path / "out" / "targets.json")
    assert path == tmp_path / "out" / "targets.json"
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and json.loads(text) == DATA
    assert CalibrationTargets.load(path) == targets
    assert read_targets_file(path) == DATA


@pytest.mark.parametrize(("content", "message"), [
    (None, "not found: run `evalserve calibrate` first"),
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
])
def test_read_targets_file_errors_name_the_file(tmp_path: Path, content: str | None,
                                                message: str) -> None:
    path = tmp_path / "targets.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError) as info:
        read_targets_file(path)
    assert f"targets file {str(path)!r}" in info.value.message
    assert message in info.value.message


def test_read_targets_file_does_not_check_the_metrics(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"relevance": 1}', encoding="utf-8")
    assert read_targets_file(path) == {"relevance": 1}
    with pytest.raises(InvalidInputError, match="lack 'factuality'"):
        CalibrationTargets.load(path)


def test_targets_from_values_are_mean_and_population_std() -> None:
    values = {"relevance": [0.2, 0.4], "factuality": [1.0, 1.0], "fkgl": [6.0, 10.0],
              "smog": [8.0, 8.0], "dale_chall": [7.0, 9.0]}
    targets = targets_from_values(values, {"source": "humans"})
    assert targets.relevance.mean == pytest.approx(0.3)
    assert targets.relevance.std == pytest.approx(0.1)
    assert targets.fkgl == MetricTarget(8.0, 2.0)
    assert targets.factuality == MetricTarget(1.0, 0.0)
    assert (targets.n, targets.meta) == (2, {"source": "humans"})
    single = targets_from_values({m: [3.0] for m in METRICS})
    assert single.smog == MetricTarget(3.0, 0.0) and single.n == 1 and single.meta == {}


TEXTS = ["The cat sat on the mat. It was warm.",
         "Photosynthesis converts light energy into chemical energy stored in glucose."]
ORIGINALS = ["A cat sat on a warm mat.", "Plants turn light into chemical energy."]


def test_measure_gives_the_five_metrics_per_text() -> None:
    def relevance_fn(originals: list[str], texts: list[str]) -> list[float]:
        return [0.25 * (i + 1) for i in range(len(texts))]

    def judge(originals: list[str], texts: list[str]) -> list[float]:
        return [1.0, 0.0]

    values, method = measure(ORIGINALS, TEXTS, relevance_fn=relevance_fn, factuality_fn=judge)
    read = readability(TEXTS).scores
    assert values == {"relevance": [0.25, 0.5], "factuality": [1.0, 0.0],
                      "fkgl": [s.fkgl for s in read], "smog": [s.smog for s in read],
                      "dale_chall": [s.dale_chall for s in read]}
    assert method == "judge"  # named after the pluggable scorer


def test_measure_takes_the_method_from_a_factuality_result() -> None:
    def scorer(originals: list[str], texts: list[str]) -> SimpleNamespace:
        return SimpleNamespace(scores=[0.5, 0.75], method="llm_judge")

    values, method = measure(ORIGINALS, TEXTS, relevance_fn=lambda o, t: [1.0, 1.0],
                             factuality_fn=scorer)
    assert (values["factuality"], method) == ([0.5, 0.75], "llm_judge")


def test_measure_readability_follows_the_language() -> None:
    texts = ["El gato se sentó en la alfombra. Hacía calor.", "Las plantas usan la luz."]
    values, _ = measure(["a", "b"], texts, relevance_fn=lambda o, t: [1.0, 1.0],
                        factuality_fn=lambda o, t: [1.0, 1.0], lang="es")
    assert values["smog"] == [s.smog for s in readability(texts, lang="es").scores]
    with pytest.raises(InvalidInputError, match="readability does not support lang='xx'"):
        measure(["a", "b"], texts, relevance_fn=lambda o, t: [1.0, 1.0],
                factuality_fn=lambda o, t: [1.0, 1.0], lang="xx")


@pytest.mark.parametrize(("relevance", "factuality"), [([0.5], [0.5, 0.5]),
                                                       ([0.5, 0.5], [0.5, 0.5, 0.5])])
def test_a_scorer_with_the_wrong_count_is_refused(relevance: list[float],
                                                  factuality: list[float]) -> None:
    with pytest.raises(InvalidInputError, match="it must return one per pair") as info:
        measure(ORIGINALS, TEXTS, relevance_fn=lambda o, t: relevance,
                factuality_fn=lambda o, t: factuality)
    assert f"({len(relevance)}, {len(factuality)} for 2)" in info.value.message
