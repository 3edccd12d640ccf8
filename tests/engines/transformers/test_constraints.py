"""Output constraints compiled by xgrammar for the bundled model's tokenizer: every token the
mask allows keeps the output valid (random walks through the allowed tokens always end in a
valid answer), the mask is applied during sampling, and a constraint that cannot compile is
the client's error."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import jsonschema
import pytest
import torch

from evalserve.engines.base import GenerationRequest, OutputConstraint
from evalserve.engines.transformers.constraints import GrammarFactory
from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.engines.transformers.sampling import sample_next_tokens
from evalserve.errors import InvalidInputError
from tests.engines.transformers.tiny import sequence

SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": [1, 2, 3]}, "ok": {"type": "boolean"}},
    "required": ["score", "ok"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def tokenizer(engine: TransformersEngine) -> Any:
    return engine.tokenizer


@pytest.fixture(scope="module")
def grammars(engine: TransformersEngine) -> GrammarFactory:
    vocab = engine.model.get_output_embeddings().weight.shape[0]
    return GrammarFactory(engine.tokenizer, vocab, [engine.tokenizer.eos_token_id])


def allowed(grammars: GrammarFactory, matcher: Any) -> list[int]:
    """The token ids the matcher's mask lets through now."""
    bitmask = grammars.allocate_bitmask(1)
    matcher.fill_next_token_bitmask(bitmask, 0)
    logits = torch.zeros(1, grammars.vocab_size)
    grammars.apply_bitmask(logits, bitmask, [0])
    return torch.isfinite(logits[0]).nonzero().flatten().tolist()


def walk(grammars: GrammarFactory, tokenizer: Any, constraint: OutputConstraint, seed: int,
         max_steps: int = 80) -> str:
    """Pick allowed tokens at random until the grammar ends; the text they make."""
    rng = random.Random(seed)
    matcher = grammars.matcher(constraint)
    out: list[int] = []
    for _ in range(max_steps):
        token = rng.choice(allowed(grammars, matcher))
        assert matcher.accept_token(token)
        if matcher.is_terminated():
            assert token == tokenizer.eos_token_id
            return tokenizer.decode(out)
        out.append(token)
    raise AssertionError(f"no end after {max_steps} tokens: {tokenizer.decode(out)!r}")


@pytest.mark.parametrize("seed", range(4))
def test_any_path_through_a_json_schema_mask_is_valid_json(grammars: GrammarFactory,
                                                           tokenizer: Any, seed: int) -> None:
    text = walk(grammars, tokenizer, OutputConstraint(json_schema=SCHEMA), seed)
    jsonschema.validate(json.loads(text), SCHEMA)


@pytest.mark.parametrize("seed", range(4))
def test_any_path_through_a_regex_or_choice_mask_matches(grammars: GrammarFactory,
                                                         tokenizer: Any, seed: int) -> None:
    pattern = r"[0-9]{3}-[a-z]{2}"
    assert re.fullmatch(pattern, walk(grammars, tokenizer, OutputConstraint(regex=pattern), seed))
    choice = OutputConstraint(choice=("yes", "no", "maybe not"))
    assert walk(grammars, tokenizer, choice, seed) in {"yes", "no", "maybe not"}


def test_the_mask_allows_only_tokens_that_can_continue(grammars: GrammarFactory,
                                                       tokenizer: Any) -> None:
    matcher = grammars.matcher(OutputConstraint(regex=r"[0-9]+"))
    first = allowed(grammars, matcher)
    assert 0 < len(first) < grammars.vocab_size // 10
    assert all(re.fullmatch(r"[0-9]+", tokenizer.decode([t])) for t in first)
    assert tokenizer.eos_token_id not in first  # at least one digit first
    matcher.accept_token(first[0])
    assert tokenizer.eos_token_id in allowed(grammars, matcher)


def test_each_matcher_is_fresh_even_when_the_grammar_is_cached(grammars: GrammarFactory,
                                                               tokenizer: Any) -> None:
    constraint = OutputConstraint(choice=("yes", "no"))
    used = grammars.matcher(constraint)
    start = allowed(grammars, used)
    used.accept_token(tokenizer.encode("yes", add_special_tokens=False)[0])
    assert allowed(grammars, used) != start
    assert allowed(grammars, grammars.matcher(constraint)) == start


def test_sampling_applies_the_mask_only_to_constrained_rows(grammars: GrammarFactory,
                                                            tokenizer: Any) -> None:
    torch.manual_seed(3)
    logits = torch.randn(2, grammars.vocab_size)
    free, _ = sequence([1], max_tokens=4)
    bound, _ = sequence([1], max_tokens=4, logprobs=2)
    bound.matcher = grammars.matcher(OutputConstraint(regex=r"[0-9]+"))
    digits = allowed(grammars, bound.matcher)
    chosen = sample_next_tokens(logits.clone(), [free, bound], grammars, tokenizer.decode)
    assert chosen[0][0] == int(logits[0].argmax())
    assert chosen[1][0] == max(digits, key=lambda t: float(logits[1, t]))
    # the logprobs are spread over the allowed tokens only
    entry = chosen[1][1]
    assert all(re.fullmatch(r"[0-9]+", token) for token, _ in entry.top)
    expected = torch.log_softmax(logits[1, digits], dim=-1).max()
    assert entry.logprob == pytest.approx(float(expected), abs=1e-5)


@pytest.mark.parametrize("constraint", [
    OutputConstraint(regex="("),
    OutputConstraint(json_schema={"type": "nonsense"}),
    OutputConstraint(json_schema={"type": "object", "properties": {"a": {"$ref": "#/nope"}}}),
])
def test_a_constraint_that_cannot_compile_is_invalid_input(grammars: GrammarFactory,
                                                           constraint: OutputConstraint) -> None:
    with pytest.raises(InvalidInputError, match="cannot be compiled"):
        grammars.matcher(constraint)


async def test_bad_regex_is_invalid_input(engine: TransformersEngine) -> None:
    """Through the engine: the request fails before it is queued."""
    with pytest.raises(InvalidInputError):
        await engine.generate(GenerationRequest(messages=[{"role": "user", "content": "x"}],
                                                max_tokens=2,
                                                constraint=OutputConstraint(regex="(")))
    assert not engine._live
