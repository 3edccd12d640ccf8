"""The transformers engine on the real bundled model: generation, streaming, stops, budgets,
seeds, logprobs, constraints and aborts. Batching is tested with the scheduler
(test_scheduler.py), the grammars in test_constraints.py."""

from __future__ import annotations

import asyncio
import json
import re

import jsonschema
import pytest

from evalserve.engines.base import GenerationRequest, OutputConstraint
from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.errors import InvalidInputError
from tests.waiting import wait_until


def chat(text: str, **kwargs: object) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], **kwargs)


async def test_chat_generation_answers_and_counts_tokens(engine: TransformersEngine) -> None:
    result = await engine.generate(chat("What is the capital of France?", max_tokens=24,
                                        temperature=0))
    out = result.outputs[0]
    assert "Paris" in out.text
    assert out.finish_reason in {"stop", "length"}
    assert 0 < out.completion_tokens <= 24
    assert result.prompt_tokens == engine.count_tokens(
        engine.tokenizer.apply_chat_template(
            [{"role": "user", "content": "What is the capital of France?"}],
            tokenize=False, add_generation_prompt=True,
        )
    )


async def test_stream_concatenates_to_the_same_text(engine: TransformersEngine) -> None:
    request = chat("Name three fruits.", max_tokens=30, temperature=0)
    full = await engine.generate(request)
    pieces = [d async for d in engine.stream(chat("Name three fruits.", max_tokens=30,
                                                  temperature=0))]
    assert len(pieces) > 3
    assert "".join(p.text for p in pieces) == full.text
    assert pieces[-1].finish_reason == full.outputs[0].finish_reason
    assert pieces[-1].completion_tokens == full.outputs[0].completion_tokens


async def test_stop_sequence_cuts_and_is_not_returned(engine: TransformersEngine) -> None:
    free = await engine.generate(GenerationRequest(prompt="Count: 1, 2, 3,", max_tokens=20,
                                                   temperature=0))
    assert " 6" in free.text
    stopped = await engine.generate(GenerationRequest(prompt="Count: 1, 2, 3,", max_tokens=20,
                                                      temperature=0, stop=[" 6"]))
    assert stopped.outputs[0].finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(" 6")]


async def test_max_tokens_bounds_output(engine: TransformersEngine) -> None:
    result = await engine.generate(chat("Write a long story about a dragon.", max_tokens=7,
                                        temperature=0))
    assert result.outputs[0].finish_reason == "length"
    assert result.outputs[0].completion_tokens == 7


async def test_seeded_sampling_is_reproducible(engine: TransformersEngine) -> None:
    def req(seed: int) -> GenerationRequest:
        return GenerationRequest(prompt="Once upon a time", max_tokens=16, temperature=1.0,
                                 seed=seed)

    first, again, *others = await asyncio.gather(*(engine.generate(req(s))
                                                   for s in (11, 11, 12, 13, 14)))
    assert first.text == again.text
    assert any(o.text != first.text for o in others)


async def test_n_returns_distinct_sequences(engine: TransformersEngine) -> None:
    result = await engine.generate(GenerationRequest(prompt="My favourite animal is",
                                                     max_tokens=8, temperature=1.0, n=3, seed=5))
    assert [o.index for o in result.outputs] == [0, 1, 2]
    assert len({o.text for o in result.outputs}) > 1


async def test_logprobs_per_token_with_top_alternatives(engine: TransformersEngine) -> None:
    result = await engine.generate(chat("Say hello.", max_tokens=6, temperature=0, logprobs=3))
    out = result.outputs[0]
    assert out.logprobs is not None
    assert len(out.logprobs) == out.completion_tokens - (out.finish_reason == "stop")
    for entry in out.logprobs:
        assert entry.logprob <= 0
        assert len(entry.top) == 3
        values = [lp for _, lp in entry.top]
        assert values == sorted(values, reverse=True)
        # greedy: the chosen token is the most likely one
        assert entry.top[0][0] == entry.token
        assert entry.top[0][1] == pytest.approx(entry.logprob)


GRADE_SCHEMA = {
    "type": "object",
    "properties": {
        "feedback": {"type": "string", "maxLength": 40},
        "score": {"type": "integer", "enum": [0, 1, 2, 3, 4, 5]},
    },
    "required": ["feedback", "score"],
    "additionalProperties": False,
}


async def test_json_schema_constraint_always_parses(engine: TransformersEngine) -> None:
    topics = ["photosynthesis", "gravity", "volcanoes", "the French revolution", "fractions",
              "the water cycle", "poetry", "electricity", "the Roman empire", "climate"]
    requests = [
        chat(f"Student answer {i} about {topics[i % 10]}: '{'very ' * (i % 4)}good answer'. "
             "Grade it from 0 to 5 and give feedback as JSON.",
             max_tokens=72, temperature=0.7 if i % 2 else 0.0, seed=i,
             constraint=OutputConstraint(json_schema=GRADE_SCHEMA))
        for i in range(100)
    ]
    results = await engine.generate_many(requests)
    assert len(results) == 100
    for result in results:
        parsed = json.loads(result.text)
        jsonschema.validate(parsed, GRADE_SCHEMA)
        assert result.outputs[0].finish_reason == "stop"


async def test_choice_and_regex_constraints(engine: TransformersEngine) -> None:
    choice = await engine.generate(chat("Is the sky blue? Answer yes or no.", max_tokens=4,
                                        temperature=0,
                                        constraint=OutputConstraint(choice=("yes", "no"))))
    assert choice.text in {"yes", "no"}
    regex = await engine.generate(chat("Give a date.", max_tokens=16, temperature=0,
                                       constraint=OutputConstraint(regex=r"\d{4}-\d{2}-\d{2}")))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", regex.text)


async def test_prompt_longer_than_context_is_rejected(engine: TransformersEngine) -> None:
    with pytest.raises(InvalidInputError, match="MAX_MODEL_LEN"):
        await engine.generate(GenerationRequest(prompt="word " * 3000, max_tokens=4))


async def test_closing_a_stream_aborts_the_generation(engine: TransformersEngine) -> None:
    stream = engine.stream(chat("Write a very long essay about the sea.", max_tokens=200,
                                temperature=0))
    got = 0
    async for _ in stream:
        got += 1
        if got == 3:
            break
    await stream.aclose()
    await wait_until(lambda: engine.running == 0, timeout=10, what="the aborted sequence to leave")
    assert engine.running == 0 and engine.queue_depth == 0
    assert not engine._live
