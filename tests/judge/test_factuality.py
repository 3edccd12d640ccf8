"""The metrics' LLM-judge factuality: the built-in `factuality` rubric graded by `Judge`."""

from __future__ import annotations

import math

import pytest

from evalserve.engines.base import TokenLogprob
from evalserve.errors import EngineError
from evalserve.judge import load_rubric
from evalserve.judge.factuality import (
    FactualityJudge,
    factuality_item,
    judge_factuality,
    local_service,
    rating_to_score,
)
from evalserve.judge.prompts import output_schema
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine, request_text

#: The judge's system prompt before it became a rubric (metrics_judge.SYSTEM_PROMPT): the
#: rubric must render it unchanged.
SYSTEM_PROMPT = (
    "You are a careful fact checker. Rate how factually consistent the SUMMARY is with the "
    "SOURCE, judging only whether its claims are supported by the SOURCE (not its style):\n"
    "5 = every claim is supported by the source;\n"
    "4 = supported, with a minor unsupported detail;\n"
    "3 = some claims are unsupported;\n"
    "2 = most claims are unsupported or distorted;\n"
    "1 = it contradicts the source or is unrelated to it.\n"
    'Answer with JSON: {"score": <1-5>}.'
)


def digit_steps(top: list[tuple[str, float]]) -> list[TokenLogprob]:
    """Logprobs of the answer `{"score": N}` whose digit step has the alternatives `top`."""
    token, logprob = top[0]
    return [TokenLogprob('{"', 0.0), TokenLogprob("score", 0.0), TokenLogprob('":', 0.0),
            TokenLogprob(" ", 0.0), TokenLogprob(token, logprob, top), TokenLogprob("}", 0.0)]


async def test_the_rubric_sends_the_prompt_and_schema_of_before() -> None:
    engine = ScriptedEngine(lambda r: '{"score": 4}')
    result = await judge_factuality(engine, ["The source text."], ["The summary."])
    assert (result.scores, result.mean, result.method) == ([0.75], 0.75, "llm_judge")
    (request,) = engine.requests
    assert request.messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user",
         "content": "SOURCE:\nThe source text.\n\nSUMMARY:\nThe summary.\n\nScore from 1 to 5:"},
    ]
    assert request.constraint is not None and request.constraint.json_schema == {
        "type": "object",
        "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
        "required": ["score"],
        "additionalProperties": False,
    }
    assert (request.temperature, request.seed, request.max_tokens) == (0.0, 0, 16)
    assert output_schema(load_rubric("factuality")) == request.constraint.json_schema


@pytest.mark.parametrize(("rating", "score"), [(1, 0.0), (2, 0.25), (3, 0.5), (5, 1.0)])
async def test_ratings_map_linearly_to_unit_range(rating: int, score: float) -> None:
    engine = ScriptedEngine(lambda r: f'{{"score": {rating}}}')
    assert (await judge_factuality(engine, ["a"], ["b"])).scores == [score]
    assert rating_to_score(rating) == score


async def test_weights_ratings_by_probability() -> None:
    # P(5) = 0.6, P(4) = 0.3, P(1) = 0.1 -> rating 4.3 -> (4.3 - 1) / 4 = 0.825
    steps = digit_steps([("5", math.log(0.6)), ("4", math.log(0.3)), ("1", math.log(0.1)),
                         ("2", float("-inf"))])
    engine = ScriptedEngine(lambda r: '{"score": 5}', logprobs=steps)
    assert (await judge_factuality(engine, ["a b"], ["a"])).scores == [pytest.approx(0.825)]


async def test_regression_duplicate_score_tokens_are_summed_not_maxed() -> None:
    # metrics_judge kept the max of "4" and " 4" (0.3 each, P(5) = 0.4: rating 4.571); both
    # read as the rating 4, so their probabilities add up: P(4) = 0.6 -> rating 4.4 -> 0.85.
    steps = digit_steps([("4", math.log(0.3)), (" 4", math.log(0.3)), ("5", math.log(0.4))])
    engine = ScriptedEngine(lambda r: '{"score": 4}', logprobs=steps)
    result = await judge_factuality(engine, ["a b"], ["a"])
    assert result.scores == [pytest.approx((4.4 - 1) / 4)]


async def test_an_unscored_pair_raises_engine_error_after_retries() -> None:
    engine = ScriptedEngine(lambda r: "I cannot rate this.")
    engine.supports_constraints = False
    with pytest.raises(EngineError, match="ALIGNSCORE_CKPT") as info:
        await judge_factuality(engine, ["a", "b"], ["a", "b"])
    assert "pair 0" in info.value.message and "I cannot rate this." in info.value.message
    assert len(engine.requests) == 2 * 3  # each pair: the first attempt and two retries


async def test_free_text_ratings_parse_without_constraints() -> None:
    engine = ScriptedEngine(lambda r: "Score: 2")
    engine.supports_constraints = False
    engine.supports_logprobs = False
    result = await judge_factuality(engine, ["a"], ["b"])
    assert result.scores == [0.25]
    assert engine.requests[0].constraint is None and engine.requests[0].logprobs is None


def test_long_texts_are_cut_to_fit_the_context() -> None:
    engine = ScriptedEngine(lambda r: '{"score": 3}')
    original, generated = "word " * 4000, "claim " * 2000
    item = factuality_item(engine, original, generated, max_prompt_tokens=1024)
    room = 1024 - 16 - 200
    assert engine.count_tokens(item["summary"]) <= room // 3
    assert engine.count_tokens(item["source"]) + engine.count_tokens(item["summary"]) <= room
    assert original.startswith(item["source"]) and generated.startswith(item["summary"])
    short = factuality_item(engine, "short source", "short summary")
    assert short == {"source": "short source", "summary": "short summary"}


async def test_pairs_are_graded_concurrently_on_the_provided_engine() -> None:
    engine = ScriptedEngine(lambda r: '{"score": 5}', delay=0.05)
    calls = []

    async def provider() -> ScriptedEngine:
        calls.append(1)
        return engine

    judge = FactualityJudge(provider, max_prompt_tokens=512)
    result = await judge(["a", "b", "c"], ["a", "b", "c"])
    assert result.scores == [1.0, 1.0, 1.0] and calls == [1]
    assert engine.max_in_flight == 3
    assert all("SOURCE:" in request_text(r) for r in engine.requests)


async def test_local_service_starts_its_engine_on_first_use_and_closes_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[ScriptedEngine] = []

    def create(s: Settings) -> ScriptedEngine:
        created.append(ScriptedEngine(lambda r: '{"score": 3}'))
        return created[-1]

    monkeypatch.setattr("evalserve.engines.registry.create_engine", create)
    async with local_service(settings) as service:
        scores = await service.score_pairs(["rouge_l"], ["a b"], ["a c"])
        assert scores.rows[0]["rouge_l"] == pytest.approx(0.5) and created == []
        fact = await service.factuality(["a", "b"], ["a", "b"])
        await service.factuality(["a"], ["a"])
        assert fact.scores == [0.5, 0.5] and len(created) == 1
        assert created[0].started and not created[0].closed
    assert created[0].closed


def test_the_rubric_is_built_in_and_score_only() -> None:
    rubric = load_rubric("factuality")
    assert rubric.format == "score" and rubric.scale == [1, 2, 3, 4, 5]
    assert rubric.fields == ["source", "summary"]
