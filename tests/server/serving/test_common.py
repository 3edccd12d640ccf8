"""What completions and chat share (`server/serving/common.py`): the model check and rate
limit of `begin`, the response cache and failure counting of `Call`, output constraints,
sampling arguments, and merging several engine streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from evalserve.engines.base import (
    GenerationRequest,
    OutputConstraint,
    StreamDelta,
)
from evalserve.errors import EngineError, InvalidInputError, NotFoundError, RateLimitError
from evalserve.server.auth import Caller
from evalserve.server.cache import MemoryCache
from evalserve.server.protocol.openai import ChatCompletionRequest
from evalserve.server.ratelimit import RateLimiter
from evalserve.server.serving.common import (
    Call,
    begin,
    check_support,
    constraint_of,
    dumps,
    first_delta,
    merge_streams,
    new_id,
    sampling_of,
)
from evalserve.server.state import AppState
from evalserve.server.telemetry import Telemetry
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine
from tests.server.openai_app import chat_body, make_settings, running_app

SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"}}}


def caller(key_id: str) -> Caller:
    return Caller(key_id, False, "10.0.0.1")


def body(**extra: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(chat_body(**extra))


def ready_state(settings: Settings, engine: ScriptedEngine | None = None) -> AppState:
    """A loaded state with telemetry and a memory cache."""
    state = AppState(settings=settings, engine=engine or ScriptedEngine(lambda r: "ok"))
    state.components.telemetry = Telemetry(state.engine, loaded=lambda: True,
                                           active_jobs=lambda: 0)
    state.components.response_cache = MemoryCache(ttl=60, max_entries=10)
    state.engine_ready.set()
    return state


def counter(state: AppState, name: str, **labels: str) -> float:
    telemetry = state.components.telemetry
    assert telemetry is not None
    for family in text_string_to_metric_families(telemetry.exposition().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_dumps_is_compact_utf8_and_ids_are_unique() -> None:
    assert dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()
    first, second = new_id("chatcmpl"), new_id("chatcmpl")
    assert first.startswith("chatcmpl-") and len(first) == len("chatcmpl-") + 32
    assert first != second


# ----------------------------------------------------------------------------- begin


async def test_begin_checks_the_model_is_served(settings: Settings) -> None:
    state = ready_state(settings)
    call = await begin(state, "chat", "scripted", caller("key"))
    assert isinstance(call, Call)
    assert (call.engine, call.endpoint, call.model) == (state.engine, "chat", "scripted")
    with pytest.raises(NotFoundError) as info:
        await begin(state, "chat", "gpt-4", caller("key"))
    assert info.value.code == "model_not_found"
    assert info.value.message == ("model 'gpt-4' is not served here; use one of: scripted "
                                  "(GET /v1/models)")


async def test_begin_is_a_503_while_the_engine_loads(settings: Settings) -> None:
    state = ready_state(settings)
    state.engine_ready.clear()
    with pytest.raises(EngineError, match="still loading"):
        await begin(state, "chat", "scripted", caller("key"))


async def test_begin_applies_the_rate_limit_and_counts_refusals(settings: Settings) -> None:
    state = ready_state(settings)
    state.components.rate_limiter = RateLimiter.from_settings(
        make_settings(settings, rate_limits="scripted=1/minute"))
    try:
        await begin(state, "chat", "scripted", caller("k1"))
        with pytest.raises(RateLimitError):
            await begin(state, "chat", "scripted", caller("k1"))
        await begin(state, "chat", "scripted", caller("k2"))  # its own window
    finally:
        await state.components.rate_limiter.close()
    assert counter(state, "text_rate_limited_requests_total", model="scripted") == 1.0


# ----------------------------------------------------------------------------- Call


async def test_a_deterministic_request_is_cached_after_the_first_answer(
        settings: Settings) -> None:
    state = ready_state(settings)
    request = body(temperature=0)
    first = await begin(state, "chat", "scripted", caller("k"))
    assert await first.cached(request) is None
    missed = await first.respond({"answer": "é"})
    assert (missed.headers["x-cache"], missed.body) == ("miss", dumps({"answer": "é"}))
    second = await begin(state, "chat", "scripted", caller("k"))
    hit = await second.cached(request)
    assert hit is not None
    assert (hit.headers["x-cache"], hit.body, hit.media_type) == (
        "hit", dumps({"answer": "é"}), "application/json")
    assert counter(state, "text_cache_misses_total", endpoint="chat") == 1.0
    assert counter(state, "text_cache_hits_total", endpoint="chat") == 1.0


async def test_sampled_or_streamed_requests_skip_the_cache(settings: Settings) -> None:
    state = ready_state(settings)
    for request in (body(temperature=0.7), body(temperature=0, stream=True)):
        call = await begin(state, "chat", "scripted", caller("k"))
        assert await call.cached(request) is None and call.key is None
        await call.respond({"x": 1})
    assert len(state.components.response_cache) == 0
    assert counter(state, "text_cache_misses_total", endpoint="chat") == 0.0


async def test_run_counts_failures_by_code_but_not_cancellations(settings: Settings) -> None:
    state = ready_state(settings)
    call = await begin(state, "chat", "scripted", caller("k"))

    async def fails() -> None:
        raise EngineError("the GPU fell off")

    async def crashes() -> None:
        raise ValueError("bug")

    async def cancelled() -> None:
        raise asyncio.CancelledError

    assert await call.run(asyncio.sleep(0, result=7)) == 7
    with pytest.raises(EngineError):
        await call.run(fails())
    with pytest.raises(ValueError):
        await call.run(crashes())
    with pytest.raises(asyncio.CancelledError):
        await call.run(cancelled())
    errors = "text_generation_errors_total"
    assert counter(state, errors, model="scripted", endpoint="chat", type="engine_error") == 1
    assert counter(state, errors, model="scripted", endpoint="chat", type="ValueError") == 1
    assert counter(state, errors, model="scripted", endpoint="chat",
                   type="CancelledError") == 0


async def test_observe_records_the_tokens(settings: Settings) -> None:
    state = ready_state(settings)
    call = await begin(state, "completions", "scripted", caller("k"))
    await call.observe(prompt_tokens=5, completion_tokens=3)
    assert counter(state, "text_prompt_tokens_total", model="scripted") == 5
    assert counter(state, "text_generated_tokens_total", model="scripted") == 3


async def test_without_telemetry_or_cache_a_call_still_answers(settings: Settings) -> None:
    state = ready_state(settings)
    state.components.telemetry = state.components.response_cache = None
    call = await begin(state, "chat", "scripted", caller("k"))
    assert await call.cached(body(temperature=0)) is None
    await call.observe(1, 1)
    call.failed(EngineError("x"))
    assert (await call.respond({"a": 1})).headers["x-cache"] == "miss"


# ----------------------------------------------------------------------------- constraints


@pytest.mark.parametrize(("extra", "expected"), [
    ({}, None),
    ({"response_format": {"type": "text"}}, None),
    ({"response_format": {"type": "json_object"}}, OutputConstraint(json_object=True)),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "s",
                                                                  "schema": SCHEMA}}},
     OutputConstraint(json_schema=SCHEMA)),
    ({"structured_outputs": {"json": SCHEMA}}, OutputConstraint(json_schema=SCHEMA)),
    ({"structured_outputs": {"json": json.dumps(SCHEMA)}}, OutputConstraint(json_schema=SCHEMA)),
    ({"structured_outputs": {"regex": "[0-9]"}}, OutputConstraint(regex="[0-9]")),
    ({"structured_outputs": {"choice": ["y", "n"]}}, OutputConstraint(choice=("y", "n"))),
    ({"structured_outputs": {"json_object": True}}, OutputConstraint(json_object=True)),
    ({"guided_json": json.dumps(SCHEMA)}, OutputConstraint(json_schema=SCHEMA)),
    ({"guided_json": SCHEMA}, OutputConstraint(json_schema=SCHEMA)),
    ({"guided_regex": "a+"}, OutputConstraint(regex="a+")),
    ({"guided_choice": ["a"]}, OutputConstraint(choice=("a",))),
])
def test_each_way_of_asking_is_one_constraint(extra: dict, expected: object) -> None:
    assert constraint_of(body(**extra)) == expected


@pytest.mark.parametrize(("extra", "message"), [
    ({"guided_regex": "a", "guided_choice": ["a"]}, "send one output constraint"),
    ({"structured_outputs": {"regex": "a", "choice": ["a"]}}, "send one output constraint"),
    ({"structured_outputs": {"grammar": "root ::= x"}},
     "structured_outputs.grammar is not supported; use json, regex or choice"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "s"}}},
     "response_format.json_schema.schema is required for type json_schema"),
    ({"guided_json": "[1, 2]"}, "guided_json must be a JSON schema object"),
    ({"structured_outputs": {"json": "{oops"}},
     "structured_outputs.json must be a JSON schema object: "),
])
def test_bad_constraints_say_what_to_send(extra: dict, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        constraint_of(body(**extra))
    assert info.value.message.startswith(message)


def test_sampling_of_maps_the_shared_fields() -> None:
    request = body(temperature=0.5, top_p=0.9, stop=["\n", ""], seed=7, presence_penalty=0.1,
                   frequency_penalty=0.2, repetition_penalty=1.1, guided_regex="x")
    assert sampling_of(request, None, 64) == {
        "max_tokens": 64, "temperature": 0.5, "top_p": 0.9, "stop": ["\n"], "seed": 7,
        "presence_penalty": 0.1, "frequency_penalty": 0.2, "repetition_penalty": 1.1,
        "constraint": OutputConstraint(regex="x")}
    assert sampling_of(body(stop="END"), 5, 64)["max_tokens"] == 5
    assert sampling_of(body(stop="END"), 5, 64)["stop"] == ["END"]


def test_check_support_refuses_what_the_engine_cannot_do() -> None:
    class Plain(ScriptedEngine):
        supports_logprobs = False
        supports_constraints = False

    check_support(ScriptedEngine(lambda r: ""), 2, OutputConstraint(regex="x"))
    engine = Plain(lambda r: "")
    check_support(engine, None, None)
    with pytest.raises(InvalidInputError, match="model scripted does not return logprobs"):
        check_support(engine, 0, None)
    with pytest.raises(InvalidInputError,
                       match="model scripted cannot enforce structured output"):
        check_support(engine, None, OutputConstraint(json_object=True))


async def test_structured_output_fields_become_one_constraint(settings) -> None:  # noqa: ANN001
    schema = {"type": "object", "properties": {"score": {"type": "integer"}},
              "required": ["score"]}
    engine = ScriptedEngine(lambda r: '{"score": 3}')
    async with running_app(make_settings(settings), engine) as (_, client):
        for extra in (
            {"response_format": {"type": "json_schema",
                                 "json_schema": {"name": "s", "schema": schema, "strict": True}}},
            {"response_format": {"type": "json_object"}},
            {"structured_outputs": {"choice": ["yes", "no"]}},
            {"structured_outputs": {"regex": "[0-9]+"}},
            {"structured_outputs": {"json": json.dumps(schema)}},
            {"guided_choice": ["a", "b"]},
        ):
            r = await client.post("/v1/chat/completions", json=chat_body(**extra))
            assert r.status_code == 200, r.text
        constraints = [r.constraint for r in engine.requests]
        assert constraints[0].json_schema == schema and constraints[1].json_object
        assert constraints[2].choice == ("yes", "no") and constraints[3].regex == "[0-9]+"
        assert constraints[4].json_schema == schema and constraints[5].choice == ("a", "b")
        for bad, hint in (
            ({"response_format": {"type": "json_object"},
              "structured_outputs": {"regex": "x"}}, "one output constraint"),
            ({"structured_outputs": {"grammar": "root ::= x"}}, "grammar"),
            ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
             "schema is required"),
            ({"structured_outputs": {"json": "{not json"}}, "JSON schema"),
        ):
            r = await client.post("/v1/chat/completions", json=chat_body(**bad))
            assert r.status_code == 422 and hint in r.json()["error"]["message"], r.text
        assert len(engine.requests) == 6


# ----------------------------------------------------------------------------- streams


def _request(i: int) -> GenerationRequest:
    return GenerationRequest(request_id=f"r{i}", prompt=f"p{i}", max_tokens=8)


async def test_one_stream_is_passed_through_as_index_0() -> None:
    engine = ScriptedEngine(lambda r: "a b c")
    out = [(i, d.text) async for i, d in merge_streams(engine, [_request(0)])]
    assert out == [(0, "a"), (0, " b"), (0, " c")]


async def test_several_streams_are_merged_with_their_indices() -> None:
    engine = ScriptedEngine(lambda r: f"{r.prompt} x y")
    out = [(i, d.text) async for i, d in merge_streams(engine, [_request(i) for i in range(3)])]
    for i in range(3):
        assert [t for j, t in out if j == i] == [f"p{i}", " x", " y"]
    assert len(out) == 9


class Streams(ScriptedEngine):
    """Request r1 fails after one delta; the others wait until closed."""

    def __init__(self) -> None:
        super().__init__(lambda r: "")
        self.closed_streams: list[str] = []

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        try:
            yield StreamDelta(text=request.request_id)
            if request.request_id == "r1":
                raise EngineError("decode failed")
            await asyncio.Event().wait()
        finally:
            self.closed_streams.append(request.request_id)


async def test_a_failing_stream_fails_the_merge_and_closes_the_others() -> None:
    engine = Streams()
    seen = []
    with pytest.raises(EngineError, match="decode failed"):
        async for i, delta in merge_streams(engine, [_request(i) for i in range(3)]):
            seen.append((i, delta.text))
    assert (1, "r1") in seen and set(seen) <= {(0, "r0"), (1, "r1"), (2, "r2")}
    assert sorted(engine.closed_streams) == ["r0", "r1", "r2"]


async def test_closing_the_merge_closes_every_stream() -> None:
    engine = Streams()
    merged = merge_streams(engine, [_request(0), _request(2)])
    assert (await anext(merged))[0] in (0, 2)
    await merged.aclose()
    assert sorted(engine.closed_streams) == ["r0", "r2"]


async def test_first_delta_of_an_empty_stream_is_an_engine_error(settings: Settings) -> None:
    class Silent(ScriptedEngine):
        async def stream(self, request):  # type: ignore[override]
            return
            yield

    state = ready_state(settings, Silent(lambda r: ""))
    call = await begin(state, "chat", "scripted", caller("k"))
    with pytest.raises(EngineError, match="the engine produced no output"):
        await first_delta(merge_streams(state.engine, [_request(0)]), call)
    ok = await first_delta(merge_streams(ScriptedEngine(lambda r: "hi there"), [_request(0)]),
                           call)
    assert (ok[0], ok[1].text) == (0, "hi")
