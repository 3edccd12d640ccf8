"""The transformers engine on the real bundled model: generation, streaming, stops, budgets,
seeds, logprobs, constraints and aborts; off-loop tokenisation and per-request failures through
a real app. Batching is tested with the scheduler
(test_scheduler.py), the grammars in test_constraints.py."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest

from evalserve.engines.base import GenerationRequest, OutputConstraint
from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.errors import InvalidInputError
from evalserve.settings import Settings
from tests.engines.transformers.tiny import BrokenMatcher
from tests.server.openai_app import running_app
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


MEGABYTE_PROMPT = ("lorem ipsum dolor sit amet " * 40000)[: 1 << 20]


async def test_a_megabyte_prompt_is_tokenised_off_the_event_loop(
        engine: TransformersEngine) -> None:
    """Defect: tokenisation, chat templating and grammar compilation ran on the event loop
    before any length check, so one huge prompt froze every route. Now they run on a worker
    thread: while a 1 MB prompt is tokenised (about a second here) the loop answers within
    100 ms, and the prompt still gets the clear MAX_MODEL_LEN refusal."""
    gaps: list[float] = []
    task = asyncio.create_task(engine.generate(GenerationRequest(prompt=MEGABYTE_PROMPT,
                                                                 max_tokens=4)))
    last = time.perf_counter()
    while not task.done():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    with pytest.raises(InvalidInputError, match=r"this model takes at most 2047 \(MAX_MODEL_LEN"):
        await task
    assert len(gaps) > 20  # the loop kept turning all along
    assert max(gaps) < 0.1, f"the event loop was blocked for {max(gaps) * 1000:.0f} ms"


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[TransformersEngine, Any]]:
    """A real app on its own engine (the lifespan starts and closes it) and a client."""
    engine = TransformersEngine.from_settings(settings)
    async with running_app(settings, engine) as (_, client):
        yield engine, client


async def test_an_engine_error_is_a_5xx_for_that_request_only(served: Any) -> None:
    """Defect: one failing sequence aborted every sequence in flight, so another caller's
    request (or job item) failed with it. Now the rigged request gets a 500 `engine_error`
    envelope and the request decoding beside it answers 200 with its greedy text."""
    engine, client = served
    body = {"model": engine.model_id, "prompt": "The capital of France is", "max_tokens": 48,
            "temperature": 0}
    alone = (await engine.generate(GenerationRequest(prompt=body["prompt"], max_tokens=48,
                                                     temperature=0))).outputs[0]
    engine._grammars.matcher = lambda constraint: BrokenMatcher(fail_at=3)
    other = asyncio.create_task(client.post("/v1/completions", json=body))
    await wait_until(lambda: engine.running >= 1, what="the other request to decode")
    failed = await client.post("/v1/completions", json={
        **body, "prompt": "Name a colour:", "structured_outputs": {"regex": "[a-z ]+"}})
    assert engine.running >= 1  # the other one was still decoding when this one failed
    assert failed.status_code == 500
    error = failed.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "engine_error")
    assert "RuntimeError" in error["message"] and "see the server log" in error["message"]
    ok = await other
    assert ok.status_code == 200
    choice = ok.json()["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == (alone.text, alone.finish_reason)
    assert alone.completion_tokens > 3  # it decoded past the step where the other failed


async def test_health_answers_at_once_while_a_megabyte_prompt_is_tokenised(
        served: Any) -> None:
    """Defect: /health froze behind a huge prompt's tokenisation on the event loop."""
    engine, client = served
    encode = engine._encode
    started, finished = threading.Event(), threading.Event()

    def watched(text: str, *, special: bool) -> list[int]:
        started.set()
        try:
            return encode(text, special=special)
        finally:
            finished.set()

    engine._encode = watched
    big = asyncio.create_task(client.post("/v1/completions", json={
        "model": engine.model_id, "prompt": MEGABYTE_PROMPT, "max_tokens": 4}))
    await wait_until(started.is_set, what="the tokenisation to start", interval=0.001)
    t0 = time.perf_counter()
    health = await client.get("/health")
    took = time.perf_counter() - t0
    assert not finished.is_set(), "the tokenisation ended before /health was timed"
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert took < 0.1, f"/health took {took * 1000:.0f} ms"
    refused = await big
    assert refused.status_code == 422
    assert "MAX_MODEL_LEN=2048" in refused.json()["error"]["message"]
