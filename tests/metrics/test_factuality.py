"""AlignScore factuality on a generated tiny checkpoint: loading, chunking, aggregation."""

from __future__ import annotations

import pytest
import torch

from evalserve.errors import ConfigurationError, InvalidInputError
from evalserve.metrics import factuality, split_sentences
from evalserve.metrics.factuality import (
    AlignScorer,
    chunk_context,
    claim_sentences,
    load_scorer,
)


@pytest.fixture(scope="module")
def scorer(tiny_alignscore) -> AlignScorer:
    ckpt, roberta = tiny_alignscore
    return AlignScorer(ckpt, roberta, device="cpu", batch_size=4)


def test_checkpoint_keys_are_all_consumed_except_mlm_head(scorer, tiny_alignscore) -> None:
    ckpt, _ = tiny_alignscore
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    ignored = set(scorer.ignored_keys)
    assert all(k.startswith("mlm_head.") for k in ignored - {"base_model.embeddings.position_ids"})
    assert {k for k in state if k.startswith("mlm_head.")} <= ignored
    model_state = scorer.model.state_dict()
    used = [k for k in state if k not in ignored]
    assert len(used) > 20
    for key in used:
        assert torch.equal(model_state[key], state[key]), key
    assert not [k for k in model_state if k not in state]


def test_one_chunk_equals_direct_computation(scorer, tiny_alignscore) -> None:
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    ckpt, roberta = tiny_alignscore
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    model = RobertaModel(RobertaConfig.from_pretrained(roberta), add_pooling_layer=True).eval()
    model.load_state_dict(
        {k[len("base_model."):]: v for k, v in state.items()
         if k.startswith("base_model.") and not k.endswith("position_ids")}
    )
    tok = AutoTokenizer.from_pretrained(roberta)
    context = "The patient was admitted with a high fever. Doctors recommended rest."
    claim = "The patient had a fever."
    enc = tok(context, claim, return_tensors="pt")
    with torch.no_grad():
        pooled = model(**enc).pooler_output
        logits = pooled @ state["tri_layer.weight"].T + state["tri_layer.bias"]
    expected = torch.softmax(logits, dim=-1)[0, 0].item()
    assert scorer.score([context], [claim])[0] == pytest.approx(expected, abs=1e-5)


def test_padding_to_longest_does_not_change_scores(scorer) -> None:
    premises = ["The cat sat on the mat.", "A dog barked loudly at night. " * 5, "Paris."]
    hypotheses = ["A cat.", "The dog barked.", "Paris is the capital of France."]
    batched = scorer.nli_probs(premises, hypotheses)
    single = [scorer.nli_probs([p], [h])[0] for p, h in zip(premises, hypotheses)]
    assert batched == pytest.approx(single, abs=1e-5)
    assert len(set(round(x, 6) for x in batched)) == 3


def test_max_over_chunks_and_mean_over_sentences(scorer, monkeypatch) -> None:
    context = " ".join(f"Sentence number {i} says something about topic {i}." for i in range(80))
    chunks = chunk_context(context)
    assert len(chunks) == 2  # 640 words: 640 // 350 + 1 = 2 chunks of 40 sentences
    claim = "First claim. Second claim! Third claim?"
    assert claim_sentences(claim) == ["First claim.", "Second claim!", "Third claim?"]
    table = {
        (chunks[0], "First claim."): 0.9, (chunks[1], "First claim."): 0.2,
        (chunks[0], "Second claim!"): 0.1, (chunks[1], "Second claim!"): 0.4,
        (chunks[0], "Third claim?"): 0.3, (chunks[1], "Third claim?"): 0.3,
        ("Short context.", ""): 0.7,
    }
    calls = []

    def fake(premises, hypotheses):
        calls.append(len(premises))
        return [table[(p, h)] for p, h in zip(premises, hypotheses)]

    monkeypatch.setattr(scorer, "nli_probs", fake)
    scores = scorer.score([context, "Short context."], [claim, ""])
    assert scores[0] == pytest.approx((0.9 + 0.4 + 0.3) / 3)
    assert scores[1] == pytest.approx(0.7)
    assert calls == [6 + 1]  # all items' pairs go through one batched call


def test_chunking_follows_alignscore_formula() -> None:
    sentences = [f"Word {i} is here now." for i in range(150)]  # 5 words each, 750 words
    chunks = chunk_context(" ".join(sentences))
    # n = 750 // 350 + 1 = 3 target chunks -> 50 sentences per chunk
    assert len(chunks) == 3
    assert chunks[0] == " ".join(sentences[:50])
    assert chunk_context("") == [""]
    assert chunk_context("One short sentence.") == ["One short sentence."]


def test_empty_claim_and_context_are_scored(tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    result = factuality(["", "The cat sat.", ""], ["The cat sat.", "", ""], ckpt=ckpt,
                        roberta_dir=roberta, device="cpu")
    assert result.method == "alignscore"
    assert all(0.0 <= s <= 1.0 for s in result.scores)
    assert result.mean == pytest.approx(sum(result.scores) / 3)


def test_scorers_are_cached(tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    assert load_scorer(ckpt, roberta, "cpu") is load_scorer(ckpt, roberta, "cpu")


def test_missing_configuration(monkeypatch, tiny_alignscore, tmp_path) -> None:
    ckpt, roberta = tiny_alignscore
    monkeypatch.delenv("ALIGNSCORE_CKPT", raising=False)
    monkeypatch.delenv("ALIGNSCORE_ROBERTA_DIR", raising=False)
    with pytest.raises(ConfigurationError, match="ALIGNSCORE_CKPT"):
        factuality(["a"], ["a"])
    with pytest.raises(ConfigurationError, match="ALIGNSCORE_ROBERTA_DIR"):
        factuality(["a"], ["a"], ckpt=ckpt)
    with pytest.raises(ConfigurationError, match="not found"):
        factuality(["a"], ["a"], ckpt=tmp_path / "missing.ckpt", roberta_dir=roberta)
    with pytest.raises(ConfigurationError, match="RoBERTa"):
        factuality(["a"], ["a"], ckpt=ckpt, roberta_dir=tmp_path)


def test_env_configuration(monkeypatch, tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    monkeypatch.setenv("ALIGNSCORE_CKPT", str(ckpt))
    monkeypatch.setenv("ALIGNSCORE_ROBERTA_DIR", str(roberta))
    assert len(factuality(["The cat sat."], ["A cat."], device="cpu").scores) == 1


def test_bad_input(tiny_alignscore) -> None:
    ckpt, roberta = tiny_alignscore
    with pytest.raises(InvalidInputError, match="generated"):
        factuality(["a", "b"], ["a"], ckpt=ckpt, roberta_dir=roberta)
    with pytest.raises(InvalidInputError, match="empty"):
        factuality([], [], ckpt=ckpt, roberta_dir=roberta)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith saw the patient. He was fine!", ["Dr. Smith saw the patient.", "He was fine!"]),
        ("It costs 3.50 dollars. Really?  Yes.", ["It costs 3.50 dollars.", "Really?", "Yes."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("e.g. this stays. J. Doe agrees.", ["e.g. this stays.", "J. Doe agrees."]),
        ("我爱北京。今天天气很好！你呢？", ["我爱北京。", "今天天气很好！", "你呢？"]),
        ("Line one\n\nLine two", ["Line one", "Line two"]),
        ("   ", []),
        ("no terminator", ["no terminator"]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
