"""`POST /v1/chat/completions` through the app on a scripted engine: what
tests/server/routes/test_openai.py leaves out (n > 1, stop, usage, stream order with n > 1,
stream logprobs, errors before and during a stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from evalserve.engines.base import (
    CompletionOutput,
    GenerationRequest,
    StreamDelta,
    TokenLogprob,
)
from evalserve.errors import EngineError, UpstreamError
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine
from tests.server.openai_app import chat_body, make_settings, running_app
from tests.server.routes.test_openai import events as sse_data


async def test_n_choices_each_an_assistant_message_and_usage_sums_them(
        settings: Settings) -> None:
    replies = iter(["one", "two words", "three more words"])
    engine = ScriptedEngine(lambda r: next(replies))
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/chat/completions", json=chat_body("a b c", n=3))
    body = r.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == "scripted" and isinstance(body["created"], int)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert [c["message"] for c in body["choices"]] == [
        {"role": "assistant", "content": t} for t in ("one", "two words", "three more words")]
    assert all(c["logprobs"] is None and c["finish_reason"] == "stop" for c in body["choices"])
    # prompt counted once (3 words), completions summed over the choices (1 + 2 + 3)
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    assert len(engine.requests) == 1 and engine.requests[0].n == 3


async def test_stop_max_tokens_and_sampling_reach_the_engine(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    async with running_app(make_settings(settings), engine) as (_, client):
        await client.post("/v1/chat/completions", json=chat_body(
            stop=["###", "", "\n\n"], max_tokens=7, temperature=0.3, top_p=0.9, seed=4,
            presence_penalty=0.5, repetition_penalty=1.2))
        await client.post("/v1/chat/completions", json=chat_body(stop="END"))
    first, second = engine.requests
    assert first.stop == ["###", "\n\n"] and second.stop == ["END"]
    assert (first.max_tokens, first.temperature, first.top_p, first.seed) == (7, 0.3, 0.9, 4)
    assert (first.presence_penalty, first.repetition_penalty) == (0.5, 1.2)
    assert first.logprobs is None and first.constraint is None and first.prompt is None


async def test_the_engine_s_finish_reason_is_passed_through(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: CompletionOutput("cut", "length", 4))
    async with running_app(make_settings(settings), engine) as (_, client):
        body = (await client.post("/v1/chat/completions", json=chat_body(max_tokens=4))).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 4


async def test_unknown_model_is_a_404_envelope_listing_the_served_ones(
        settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "x")
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/chat/completions", json={**chat_body(), "model": "gpt-4o"})
        streamed = await client.post("/v1/chat/completions",
                                     json={**chat_body(stream=True), "model": "gpt-4o"})
    for response in (r, streamed):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": {
            "message": "model 'gpt-4o' is not served here; use one of: scripted "
                       "(GET /v1/models)",
            "type": "invalid_request_error", "code": "model_not_found"}}
    assert engine.requests == []


async def test_stream_with_n_sends_every_role_first_and_sums_usage(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: f"seed {r.seed} done")
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/chat/completions", json=chat_body(
            "a b", n=2, seed=5, stream=True, stream_options={"include_usage": True}))
    events = sse_data(r.text)
    assert events[-1] == "[DONE]" and "[DONE]" not in events[:-1]
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert [c["choices"][0] for c in chunks[:2]] == [
        {"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
         "finish_reason": None} for i in (0, 1)]
    content = [c for c in chunks[2:] if c["choices"]]
    assert not any("role" in c["choices"][0]["delta"] for c in content)
    texts = {0: "", 1: ""}
    for c in content:
        choice = c["choices"][0]
        texts[choice["index"]] += choice["delta"].get("content", "")
    assert texts == {0: "seed 5 done", 1: "seed 6 done"}
    finishes = [c["choices"][0]["index"] for c in content if c["choices"][0]["finish_reason"]]
    assert sorted(finishes) == [0, 1]
    # usage comes last, after every finish; the prompt is counted once, not per choice
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 6,
                                   "total_tokens": 8}
    assert all(c["choices"] for c in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage_chunk(settings: Settings) -> None:
    async with running_app(make_settings(settings)) as (_, client):
        r = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    chunks = sse_data(r.text)[:-1]
    assert chunks and all("usage" not in c and c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


class LogprobStream(ScriptedEngine):
    """Streams `hello`, ` world` with one logprob each."""

    def __init__(self) -> None:
        super().__init__(lambda r: "hello world")

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        self.requests.append(request)
        yield StreamDelta("hello", logprobs=[TokenLogprob("hello", -0.5, [("hello", -0.5),
                                                                          ("hi", -1.0)])])
        yield StreamDelta(" world", "stop", [TokenLogprob(" world", -0.25, [])], 3, 2)


async def test_stream_logprobs_are_chat_shaped_per_chunk(settings: Settings) -> None:
    engine = LogprobStream()
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/chat/completions", json=chat_body(
            stream=True, logprobs=True, top_logprobs=1))
    chunks = sse_data(r.text)[:-1]
    assert chunks[0]["choices"][0]["logprobs"] is None  # the role chunk
    got = [c["choices"][0]["logprobs"]["content"] for c in chunks[1:]]
    assert got == [
        [{"token": "hello", "logprob": -0.5, "bytes": list(b"hello"),
          "top_logprobs": [{"token": "hello", "logprob": -0.5, "bytes": list(b"hello")}]}],
        [{"token": " world", "logprob": -0.25, "bytes": list(b" world"), "top_logprobs": []}]]
    assert engine.requests[0].logprobs == 1


class FailingEngine(ScriptedEngine):
    def __init__(self, after: int) -> None:
        super().__init__(lambda r: "x")
        self.after = after

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        for _ in range(self.after):
            yield StreamDelta("tok ")
        raise UpstreamError("the upstream http://gpu:8000 closed the connection")


async def test_a_stream_that_fails_before_its_first_token_is_a_plain_error(
        settings: Settings) -> None:
    async with running_app(make_settings(settings), FailingEngine(after=0)) as (_, client):
        r = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    assert r.status_code == 502 and r.headers["content-type"] == "application/json"
    assert r.json() == {"error": {
        "message": "the upstream http://gpu:8000 closed the connection",
        "type": "upstream_error", "code": "bad_gateway"}}


async def test_a_stream_that_fails_midway_ends_with_an_error_chunk_then_done(
        settings: Settings) -> None:
    async with running_app(make_settings(settings), FailingEngine(after=2)) as (_, client):
        r = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    assert r.status_code == 200
    events = sse_data(r.text)
    assert events[-1] == "[DONE]"
    assert events[-2] == {"error": {
        "message": "the upstream http://gpu:8000 closed the connection",
        "type": "upstream_error", "code": "bad_gateway"}}
    assert [e["choices"][0]["delta"] for e in events[1:-2]] == [{"content": "tok "}] * 2


class Silent(ScriptedEngine):
    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        return
        yield  # an async generator that yields nothing


async def test_a_stream_with_no_output_is_an_engine_error(settings: Settings) -> None:
    async with running_app(make_settings(settings), Silent(lambda r: "")) as (_, client):
        r = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    assert r.status_code == 500
    assert r.json()["error"] == {"message": "the engine produced no output",
                                 "type": "server_error", "code": EngineError.code}


class NoExtras(ScriptedEngine):
    supports_logprobs = False
    supports_constraints = False


async def test_logprobs_and_constraints_the_engine_cannot_honour_are_422(
        settings: Settings) -> None:
    engine = NoExtras(lambda r: "x")
    async with running_app(make_settings(settings), engine) as (_, client):
        lp = await client.post("/v1/chat/completions", json=chat_body(logprobs=True))
        fmt = await client.post("/v1/chat/completions",
                                json=chat_body(response_format={"type": "json_object"}))
        plain = await client.post("/v1/chat/completions", json=chat_body(logprobs=False))
    assert lp.status_code == 422
    assert lp.json()["error"]["message"] == "model scripted does not return logprobs"
    assert fmt.status_code == 422
    assert fmt.json()["error"]["message"] == "model scripted cannot enforce structured output"
    assert plain.status_code == 200 and plain.json()["choices"][0]["logprobs"] is None
    assert len(engine.requests) == 1


async def test_n_is_capped_by_max_sequences_per_request(settings: Settings) -> None:
    """Regression: chat `n` was checked only against the wire maximum (16), not the
    server's `MAX_SEQUENCES_PER_REQUEST`."""
    engine = ScriptedEngine(lambda r: "x")
    async with running_app(make_settings(settings, max_sequences_per_request=2), engine) as (
            _, client):
        r = await client.post("/v1/chat/completions", json=chat_body(n=3))
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        assert "3 sequences" in r.json()["error"]["message"]
        assert "MAX_SEQUENCES_PER_REQUEST" in r.json()["error"]["message"]
        r = await client.post("/v1/chat/completions", json=chat_body(n=2))
        assert len(r.json()["choices"]) == 2
    assert len(engine.requests) == 1
