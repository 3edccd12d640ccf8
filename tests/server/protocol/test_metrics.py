"""Metric service wire models: pairing rules, the seed's field aliases and their messages."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from evalserve.server.protocol.metrics import (
    GenerateRequest,
    LossRequest,
    PairRequest,
    ReadabilityRequest,
    RougeRequest,
)


def message(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return "; ".join(e["msg"] for e in info.value.errors())


def test_pairs_must_have_the_same_length_and_the_message_says_so() -> None:
    ok = PairRequest.model_validate({"texts_original": ["a", "b"], "texts_generated": ["c", "d"],
                                     "model": "ignored"})
    assert ok.model_dump() == {"texts_original": ["a", "b"], "texts_generated": ["c", "d"]}
    assert message(PairRequest, {"texts_original": ["a", "b"], "texts_generated": ["c"]}) == (
        "Value error, `texts_original` has 2 texts but `texts_generated` has 1: send exactly "
        "one item of `texts_generated` per item of `texts_original`")


@pytest.mark.parametrize("field", ["texts_original", "texts_generated"])
def test_pairs_need_at_least_one_text(field: str) -> None:
    data = {"texts_original": ["a"], "texts_generated": ["b"], field: []}
    assert "at least 1 item" in message(PairRequest, data)


def test_rouge_accepts_either_naming_and_fills_predictions_and_references() -> None:
    seed = RougeRequest.model_validate({"texts_generated": ["g"], "texts_original": ["o"]})
    assert (seed.predictions, seed.references) == (["g"], ["o"])
    assert (seed.lang, seed.recipe, seed.stem) == ("en", "standard", False)
    mixed = RougeRequest.model_validate({"predictions": ["p"], "texts_original": ["o"]})
    assert (mixed.predictions, mixed.references) == (["p"], ["o"])
    both = RougeRequest.model_validate({"predictions": ["p"], "texts_generated": ["g"],
                                        "references": ["r"]})
    assert both.predictions == ["p"]  # the OpenAI-style name wins


def test_rouge_errors_name_the_fields_actually_sent() -> None:
    assert "send `predictions` and `references`" in message(RougeRequest, {"predictions": ["p"]})
    assert message(RougeRequest, {"predictions": ["p"], "texts_original": ["a", "b"]}) == (
        "Value error, `predictions` has 1 texts but `texts_original` has 2: send exactly one "
        "item of `texts_original` per item of `predictions`")
    assert "'en', 'zh' or 'auto'" in message(
        RougeRequest, {"predictions": ["p"], "references": ["r"], "lang": "fr"})
    assert "'standard' or 'grader'" in message(
        RougeRequest, {"predictions": ["p"], "references": ["r"], "recipe": "x"})


def test_readability_needs_texts_and_a_language_code() -> None:
    assert ReadabilityRequest.model_validate({"texts": ["t"]}).lang == "en"
    assert "at least 2 characters" in message(ReadabilityRequest, {"texts": ["t"], "lang": "e"})
    assert "at least 1 item" in message(ReadabilityRequest, {"texts": []})


def loss(**fields: Any) -> dict[str, Any]:
    return {"texts_original": ["o1", "o2"], "texts_generated": ["g1", "g2"], **fields}


def test_loss_weights_are_validated_with_the_library_message() -> None:
    weights = [0.2, 0.2, 0.2, 0.2, 0.2]
    assert LossRequest.model_validate(loss(weights=weights)).weights == weights
    assert LossRequest.model_validate(loss(weights=[0, 0, 1, 0, 0])).weights == [
        0.0, 0.0, 1.0, 0.0, 0.0]
    assert "exactly 5 numbers" in message(LossRequest, loss(weights=[0.5, 0.5]))
    assert "must sum to 1" in message(LossRequest, loss(weights=[0.5, 0.5, 0.5, 0, 0]))
    assert "weight for relevance must be >= 0" in message(
        LossRequest, loss(weights=[-0.5, 0.5, 0.5, 0.5, 0]))


def test_loss_human_texts_pair_with_the_originals() -> None:
    assert LossRequest.model_validate(loss(texts_human=["h1", "h2"])).texts_human == ["h1", "h2"]
    assert "`texts_human` has 1" in message(LossRequest, loss(texts_human=["h"]))
    assert "`texts_generated` has 1" in message(LossRequest, loss(texts_generated=["g"]))


@pytest.mark.parametrize(("data", "needle"), [
    ({}, "send `text` (a text to summarise) or `prompt`"),
    ({"text": "a", "prompt": "b"}, "send `text` (a text to summarise) or `prompt`"),
    ({"text": "  \n"}, "`text` is blank"),
    ({"prompt": ""}, "`prompt` is blank"),
    ({"text": "a", "stream": True}, "use `/v1/completions` with stream"),
    ({"text": "a", "max_tokens": 0}, "greater than or equal to 1"),
    ({"text": "a", "top_p": 0}, "greater than 0"),
    ({"text": "a", "temperature": 2.1}, "less than or equal to 2"),
])
def test_generate_request_errors(data: dict[str, Any], needle: str) -> None:
    assert needle in message(GenerateRequest, data)


def test_generate_request_takes_text_or_prompt_with_optional_overrides() -> None:
    body = GenerateRequest.model_validate({"prompt": "Once", "max_tokens": 4, "n": 3})
    assert (body.prompt, body.text, body.max_tokens, body.temperature) == ("Once", None, 4, None)
    assert GenerateRequest.model_validate({"text": "t"}).max_new_tokens is None
