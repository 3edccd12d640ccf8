"""The weighted loss: weight validation, the documented formula, pluggable scorers."""

from __future__ import annotations

import json

import pytest

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.metrics import CalibrationTargets, loss, readability, validate_weights


def fake_relevance(originals, texts):
    return [min(1.0, len(t) / 100) for t in texts]


def fake_factuality(originals, texts):
    return [0.5 if "wrong" in t else 0.9 for t in texts]


TARGETS = {
    "relevance": {"mean": 0.6, "std": 0.1},
    "factuality": {"mean": 0.8, "std": 0.0},  # std below the floor: scale is 0.01
    "fkgl": {"mean": 8.0, "std": 2.0},
    "smog": {"mean": 10.0, "std": 1.0},
    "dale_chall": {"mean": 9.0, "std": 0.5},
}


def test_formula_matches_module_doc() -> None:
    originals = ["The original medical text about fever and rest.", "Another source."]
    generated = ["The patient had a fever and must rest.", "This is wrong."]
    weights = [0.25, 0.25, 0.2, 0.15, 0.15]
    result = loss(originals, None, generated, weights=weights, targets=TARGETS,
                  factuality_fn=fake_factuality, relevance_fn=fake_relevance)
    read = readability(generated).scores
    for i, text in enumerate(generated):
        rel, fact = fake_relevance(None, [text])[0], fake_factuality(None, [text])[0]
        terms = [
            max(0.0, 0.6 - rel) / 0.1,
            max(0.0, 0.8 - fact) / 0.01,
            abs(read[i].fkgl - 8.0) / 2.0,
            abs(read[i].smog - 10.0) / 1.0,
            abs(read[i].dale_chall - 9.0) / 0.5,
        ]
        assert result.losses[i] == pytest.approx(sum(w * t for w, t in zip(weights, terms)))
    assert result.terms["factuality"] == pytest.approx([0.0, 30.0])
    assert result.loss == pytest.approx(sum(result.losses) / 2)
    assert result.metrics["fkgl"] == [s.fkgl for s in read]


def test_more_relevant_than_humans_is_not_penalised() -> None:
    result = loss(["o"], None, ["x" * 100], targets=TARGETS, factuality_fn=fake_factuality,
                  relevance_fn=fake_relevance)
    assert result.terms["relevance"] == [0.0]
    assert result.terms["factuality"] == [0.0]


def test_targets_from_humans_when_none_given() -> None:
    originals = ["Source one.", "Source two.", "Source three."]
    humans = ["A plain summary.", "Another plain summary of it.", "Short."]
    result = loss(originals, humans, humans, factuality_fn=fake_factuality,
                  relevance_fn=fake_relevance)
    read = readability(humans)
    assert result.targets.fkgl.mean == pytest.approx(read.mean.fkgl)
    assert result.targets.relevance.mean == pytest.approx(sum(fake_relevance(None, humans)) / 3)
    assert result.targets.meta == {"source": "humans"}
    # generating exactly the human texts only costs their spread around the mean
    assert result.loss < 2.0


def test_targets_from_a_file(tmp_path) -> None:
    path = tmp_path / "targets.json"
    path.write_text(json.dumps(TARGETS))
    a = loss(["o"], None, ["Some text."], targets=path, factuality_fn=fake_factuality,
             relevance_fn=fake_relevance)
    b = loss(["o"], None, ["Some text."], targets=CalibrationTargets.from_dict(TARGETS),
             factuality_fn=fake_factuality, relevance_fn=fake_relevance)
    assert a.loss == b.loss


def test_factuality_method_comes_from_the_pluggable_scorer() -> None:
    from evalserve.metrics import FactualityResult

    def judge(originals, texts):
        return FactualityResult([0.7] * len(texts), 0.7, method="llm_judge")

    result = loss(["o"], None, ["g"], targets=TARGETS, factuality_fn=judge,
                  relevance_fn=fake_relevance)
    assert result.factuality_method == "llm_judge"
    assert result.metrics["factuality"] == [0.7]


def test_default_factuality_needs_a_checkpoint(monkeypatch) -> None:
    monkeypatch.delenv("ALIGNSCORE_CKPT", raising=False)
    with pytest.raises(ConfigurationError, match="ALIGNSCORE_CKPT"):
        loss(["o"], ["h"], ["g"], relevance_fn=fake_relevance)


def test_real_relevance_with_pluggable_factuality() -> None:
    result = loss(["The patient recovered after rest."], ["The patient got better."],
                  ["The patient recovered."], factuality_fn=fake_factuality)
    assert 0.5 < result.metrics["relevance"][0] <= 1.0


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([0.25, 0.25, 0.25, 0.25], "exactly 5"),
        ([0.5, 0.5, 0.2, -0.1, -0.1], ">= 0"),
        ([0.3, 0.3, 0.2, 0.15, 0.15], "sum to 1"),
        ([0.2, 0.2, 0.2, 0.2, "0.2"], "finite number"),
        ([0.2, 0.2, 0.2, 0.2, float("nan")], "finite number"),
        ("0.2,0.2", "list of 5"),
    ],
)
def test_bad_weights(weights, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_weights(weights)
    with pytest.raises(InvalidInputError, match=message):
        loss(["o"], ["h"], ["g"], weights=weights, factuality_fn=fake_factuality,
             relevance_fn=fake_relevance)


def test_weights_within_tolerance_are_accepted() -> None:
    assert validate_weights([0.25, 0.25, 0.2, 0.15, 0.15 + 5e-7])[4] == 0.15 + 5e-7
    with pytest.raises(InvalidInputError, match="sum to 1"):
        validate_weights([0.25, 0.25, 0.2, 0.15, 0.15 + 5e-6])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["o"], None, ["g"]), "humans"),
        ((["o", "p"], ["h"], ["g", "g"]), "humans"),
        ((["o"], ["h"], ["g", "g"]), "generated"),
        (([], [], []), "empty"),
    ],
)
def test_bad_lists(args, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        loss(*args, factuality_fn=fake_factuality, relevance_fn=fake_relevance)


def test_malformed_targets() -> None:
    with pytest.raises(InvalidInputError, match="dale_chall"):
        loss(["o"], None, ["g"], targets={k: v for k, v in TARGETS.items() if k != "dale_chall"},
             factuality_fn=fake_factuality, relevance_fn=fake_relevance)


def test_scorer_returning_wrong_count() -> None:
    with pytest.raises(InvalidInputError, match="one per pair"):
        loss(["o"], None, ["g"], targets=TARGETS, factuality_fn=lambda o, t: [0.5, 0.5],
             relevance_fn=fake_relevance)
