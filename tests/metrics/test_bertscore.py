"""BERTScore relevance: parity with bert-score 0.3.13 on the bundled MiniLM, edge cases."""

from __future__ import annotations

import importlib
import random

import bert_score
import pytest

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.metrics import relevance
from evalserve.metrics.bertscore import bundled_model_dir
from tests.metrics.metrics_textgen import random_text, realistic_text

bertscore_module = importlib.import_module("evalserve.metrics.bertscore")


def pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    originals = [realistic_text(rng, 1, 6) for _ in range(n // 2)]
    originals += [random_text(rng, 1, 50) for _ in range(n - n // 2)]
    generated = [realistic_text(rng, 1, 3) for _ in range(n // 2)]
    generated += [random_text(rng, 1, 50) for _ in range(n - n // 2)]
    generated[0] = originals[0]
    return originals, generated


@pytest.mark.parametrize(("num_layers", "idf", "batch_size"), [(6, False, 16), (3, True, 64)])
def test_equals_bert_score(num_layers: int, idf: bool, batch_size: int) -> None:
    originals, generated = pairs(40, seed=num_layers)
    model_dir = str(bundled_model_dir())
    p, r, f = bert_score.score(
        generated, originals, model_type=model_dir, num_layers=num_layers, idf=idf,
        batch_size=batch_size, nthreads=0, device="cpu",
    )
    result = relevance(
        originals, generated, num_layers=num_layers, idf=idf, batch_size=batch_size,
        device="cpu",
    )
    assert result.num_layers == num_layers
    assert max(abs(s.f1 - x) for s, x in zip(result.scores, f.tolist())) <= 1e-4
    assert max(abs(s.precision - x) for s, x in zip(result.scores, p.tolist())) <= 1e-4
    assert max(abs(s.recall - x) for s, x in zip(result.scores, r.tolist())) <= 1e-4
    assert result.scores[0].f1 == pytest.approx(1.0, abs=1e-5)
    assert result.mean.f1 == pytest.approx(float(f.mean()), abs=1e-4)


def test_empty_texts_score_zero() -> None:
    result = relevance(["", "The cat sat.", "  ", "x"], ["The cat sat.", "", "", "x"])
    assert [s.f1 for s in result.scores[:3]] == [0.0, 0.0, 0.0]
    assert [s.precision for s in result.scores[:3]] == [0.0, 0.0, 0.0]
    assert result.scores[3].f1 == pytest.approx(1.0, abs=1e-5)


def test_default_model_is_the_bundled_minilm_with_all_layers() -> None:
    result = relevance(["The patient recovered."], ["The patient got better."])
    assert result.model_dir == str(bundled_model_dir())
    assert result.num_layers == 6
    assert 0.5 < result.scores[0].f1 < 1.0


def test_models_are_cached_per_dir_layer_device() -> None:
    model_dir = str(bundled_model_dir())
    first = bertscore_module._load(model_dir, 2, "cpu")
    assert bertscore_module._load(model_dir, 2, "cpu") is first
    assert bertscore_module._load(model_dir, 3, "cpu") is not first


def test_bad_layer_and_missing_model(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="num_layers"):
        relevance(["a"], ["a"], num_layers=99)
    with pytest.raises(ConfigurationError, match="never downloads"):
        relevance(["a"], ["a"], model_dir=tmp_path / "nope")


@pytest.mark.parametrize(
    ("originals", "generated", "kwargs"),
    [(["a"], ["a", "b"], {}), ([], [], {}), (["a"], ["a"], {"batch_size": 0})],
)
def test_bad_input(originals, generated, kwargs) -> None:
    with pytest.raises(InvalidInputError):
        relevance(originals, generated, **kwargs)
