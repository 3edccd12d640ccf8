"""The `openai` upstream engine against fake upstreams: httpx.MockTransport for request shapes,
retries and error mapping, and a real evalserve app (ScriptedEngine) over ASGITransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from evalserve.engines.base import GenerationRequest, OutputConstraint
from evalserve.engines.openai import OpenAIEngine, request_body
from evalserve.errors import (
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from evalserve.server.app import build_app
from evalserve.settings import load_settings
from tests.fakes import ScriptedEngine

MODELS = {"object": "list", "data": [{"id": "org/up-7b", "object": "model", "created": 1,
                                      "owned_by": "vllm", "max_model_len": 4096}]}
Handler = Callable[[httpx.Request], httpx.Response]


def chat_reply(text: str = "hi", **extra: object) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": text},
              "finish_reason": "stop", **extra}
    return {"id": "x", "object": "chat.completion", "choices": [choice],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}


class Upstream:
    """A scripted upstream: `/models` always works; other paths answer from `replies`."""

    def __init__(self, *replies: httpx.Response | Exception | Handler) -> None:
        self.replies = list(replies)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=MODELS)
        self.seen.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.seen]


def engine_for(upstream: Upstream, **kw: object) -> OpenAIEngine:
    options = {"retries": 2, "backoff": 0.001, **kw}
    return OpenAIEngine("http://up/v1", api_key="k", transport=httpx.MockTransport(upstream),
                        **options)  # type: ignore[arg-type]


def chat(**kw: object) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": "hello"}], **kw)  # type: ignore[arg-type]


def test_structured_output_request_shape_is_current_vllm() -> None:
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    body = request_body(chat(constraint=OutputConstraint(json_schema=schema)), "m", stream=False)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": schema, "strict": True}}
    regex = request_body(GenerationRequest(prompt="p", constraint=OutputConstraint(regex="[0-9]")),
                         "m", stream=True)
    assert regex["structured_outputs"] == {"regex": "[0-9]"}
    assert regex["stream_options"] == {"include_usage": True}
    choice = request_body(chat(constraint=OutputConstraint(choice=("yes", "no"))), "m",
                          stream=False)
    assert choice["structured_outputs"] == {"choice": ["yes", "no"]}
    for b in (body, regex, choice):
        assert not [k for k in b if k.startswith("guided_")]


async def test_start_discovers_model_and_chat_maps_text_logprobs_usage() -> None:
    lp = {"content": [{"token": "hi", "logprob": -0.1, "bytes": [104, 105],
                       "top_logprobs": [{"token": "hi", "logprob": -0.1},
                                        {"token": "yo", "logprob": -2.5}]}]}
    upstream = Upstream(httpx.Response(200, json=chat_reply("hi", logprobs=lp)))
    engine = engine_for(upstream)
    await engine.start()
    assert engine.model_id == "org/up-7b"
    assert (await engine.models())[0].max_model_len == 4096
    result = await engine.generate(chat(logprobs=1, max_tokens=5))
    sent = upstream.bodies()[0]
    assert upstream.seen[0].url.path == "/v1/chat/completions"
    assert upstream.seen[0].headers["authorization"] == "Bearer k"
    assert sent["model"] == "org/up-7b" and sent["logprobs"] is True and sent["top_logprobs"] == 1
    assert result.text == "hi" and result.prompt_tokens == 7
    assert result.outputs[0].completion_tokens == 2
    assert result.outputs[0].logprobs[0].token == "hi"
    assert result.outputs[0].logprobs[0].top == [("hi", -0.1)]
    await engine.close()


async def test_prompt_goes_to_completions_with_logprobs() -> None:
    reply = {"choices": [{"index": 0, "text": " world", "finish_reason": "length", "logprobs": {
        "tokens": [" world"], "token_logprobs": [-0.5], "text_offset": [0],
        "top_logprobs": [{" world": -0.5, " there": -1.5, " x": -3.0}]}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    upstream = Upstream(httpx.Response(200, json=reply))
    engine = engine_for(upstream, model="org/up-7b")
    result = await engine.generate(GenerationRequest(prompt="hello", logprobs=2, stop=["\n"]))
    sent = upstream.bodies()[0]
    assert upstream.seen[0].url.path == "/v1/completions"
    assert sent["prompt"] == "hello" and sent["logprobs"] == 2 and sent["stop"] == ["\n"]
    out = result.outputs[0]
    assert out.finish_reason == "length" and out.text == " world"
    assert out.logprobs[0].top == [(" world", -0.5), (" there", -1.5)]
    await engine.close()


async def test_5xx_and_connection_errors_are_retried_then_succeed() -> None:
    upstream = Upstream(httpx.Response(503, json={"error": {"message": "busy"}}),
                        httpx.ConnectError("refused"),
                        httpx.Response(200, json=chat_reply("ok")))
    engine = engine_for(upstream, model="m")
    assert (await engine.generate(chat())).text == "ok"
    assert len(upstream.seen) == 3
    await engine.close()


async def test_exhausted_retries_become_502_with_upstream_message() -> None:
    upstream = Upstream(httpx.Response(500, json={"error": {"message": "CUDA out of memory"}}))
    engine = engine_for(upstream, model="m", retries=1)
    with pytest.raises(UpstreamError) as info:
        await engine.generate(chat())
    assert info.value.status == 502 and "CUDA out of memory" in info.value.message
    assert len(upstream.seen) == 2
    await engine.close()


async def test_unreachable_upstream_is_502() -> None:
    engine = engine_for(Upstream(httpx.ConnectError("connection refused")), model="m")
    with pytest.raises(UpstreamError) as info:
        await engine.generate(chat())
    assert info.value.status == 502 and "cannot be reached" in info.value.message
    await engine.close()


async def test_read_timeout_is_504_and_not_retried() -> None:
    upstream = Upstream(httpx.ReadTimeout("slow"))
    engine = engine_for(upstream, model="m", timeout=3)
    with pytest.raises(UpstreamTimeoutError) as info:
        await engine.generate(chat())
    assert info.value.status == 504 and "UPSTREAM_TIMEOUT" in info.value.message
    assert len(upstream.seen) == 1
    await engine.close()


async def test_client_errors_keep_status_and_message() -> None:
    too_long = {"object": "error", "message": "prompt is too long (5000 > 4096)", "code": 400}
    engine = engine_for(Upstream(httpx.Response(400, json=too_long)), model="m")
    with pytest.raises(InvalidInputError) as info:
        await engine.generate(chat())
    assert info.value.status == 400 and "prompt is too long" in info.value.message
    engine = engine_for(Upstream(httpx.Response(404, json={"detail": "no such model"})),
                        model="m")
    with pytest.raises(NotFoundError):
        await engine.generate(chat())
    await engine.close()


async def test_429_honours_retry_after_then_maps_to_rate_limit() -> None:
    upstream = Upstream(httpx.Response(429, headers={"Retry-After": "0"},
                                       json={"error": {"message": "slow down"}}))
    engine = engine_for(upstream, model="m", retries=1)
    with pytest.raises(RateLimitError) as info:
        await engine.generate(chat())
    assert info.value.status == 429 and len(upstream.seen) == 2
    await engine.close()


async def test_bad_credentials_name_the_setting() -> None:
    engine = engine_for(Upstream(httpx.Response(401, json={"error": {"message": "bad key"}})),
                        model="m")
    with pytest.raises(UpstreamError) as info:
        await engine.generate(chat())
    assert "OPENAI_API_KEY" in info.value.message and info.value.status == 502
    await engine.close()


def sse(*chunks: dict | str) -> httpx.Response:
    lines = [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks]
    return httpx.Response(200, headers={"content-type": "text/event-stream"},
                          content="".join(lines).encode())


async def test_stream_parses_sse_and_reports_usage_on_last_delta() -> None:
    def delta(text: str | None, finish: str | None = None) -> dict:
        d = {} if text is None else {"content": text}
        return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}

    upstream = Upstream(sse({"choices": [{"index": 0, "delta": {"role": "assistant",
                                                               "content": ""}}]},
                            delta("Hel"), delta("lo"), delta(None, "length"),
                            {"choices": [], "usage": {"prompt_tokens": 4,
                                                      "completion_tokens": 2}},
                            "[DONE]"))
    engine = engine_for(upstream, model="m")
    deltas = [d async for d in engine.stream(chat())]
    assert [d.text for d in deltas] == ["Hel", "lo", ""]
    assert deltas[-1].finish_reason == "length"
    assert (deltas[-1].prompt_tokens, deltas[-1].completion_tokens) == (4, 2)
    assert upstream.bodies()[0]["stream"] is True
    await engine.close()


async def test_stream_error_chunk_raises_upstream_error() -> None:
    engine = engine_for(Upstream(sse({"error": {"message": "engine died"}})), model="m")
    with pytest.raises(UpstreamError, match="engine died"):
        async for _ in engine.stream(GenerationRequest(prompt="x")):
            pass
    await engine.close()


async def test_start_waits_for_a_loading_upstream() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] < 3:
            return httpx.Response(503, json={"error": {"message": "loading"}})
        return httpx.Response(200, json=MODELS)

    engine = OpenAIEngine("http://up/v1", transport=httpx.MockTransport(handler), retries=0,
                          backoff=0.001)
    await asyncio.wait_for(engine.start(), 5)
    assert engine.model_id == "org/up-7b" and calls["n"] == 3
    assert (await engine.health()).loaded
    await engine.close()


async def test_abort_ends_a_pending_generate_with_abort() -> None:
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=chat_reply("late"))

    engine = OpenAIEngine("http://up/v1", model="m", transport=httpx.MockTransport(slow))
    request = chat()
    task = asyncio.create_task(engine.generate(request))
    while not engine.in_flight:
        await asyncio.sleep(0.001)
    await engine.abort(request.request_id)
    result = await asyncio.wait_for(task, 5)
    assert result.outputs[0].finish_reason == "abort" and result.text == ""
    assert engine.in_flight == 0
    await engine.close()


async def test_generates_through_a_real_evalserve_app(settings) -> None:  # noqa: ANN001
    scripted = ScriptedEngine(lambda r: "proxied answer")
    app = build_app(settings, engine=scripted)
    async with app.router.lifespan_context(app):
        engine = OpenAIEngine("http://up/v1", transport=httpx.ASGITransport(app=app))
        await asyncio.wait_for(engine.start(), 10)
        assert engine.model_id == "scripted"
        result = await engine.generate(chat(temperature=0.0, seed=3, max_tokens=9))
        assert result.text == "proxied answer" and result.outputs[0].finish_reason == "stop"
        seen = scripted.requests[-1]
        assert (seen.max_tokens, seen.seed, seen.messages) == (
            9, 3, [{"role": "user", "content": "hello"}])
        streamed = [d async for d in engine.stream(GenerationRequest(prompt="p"))]
        assert "".join(d.text for d in streamed) == "proxied answer"
        await engine.close()


def test_from_settings_requires_an_endpoint() -> None:
    from evalserve.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="VLLM_ENDPOINT"):
        OpenAIEngine.from_settings(load_settings(engine="openai"))
    engine = OpenAIEngine.from_settings(load_settings(
        vllm_endpoint="http://vllm:8000/v1/completions", upstream_retries=5, max_num_seqs=7))
    assert engine.base_url == "http://vllm:8000/v1" and engine.retries == 5
    assert engine.capacity == 7


async def test_health_follows_the_upstream() -> None:
    """Regression: a proxy whose upstream was down still reported model_loaded."""
    import httpx

    from evalserve.engines.openai import OpenAIEngine

    up = {"ok": True}

    def handler(request: httpx.Request) -> httpx.Response:
        if not up["ok"]:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"object": "list", "data": [{"id": "m"}]})

    engine = OpenAIEngine("http://upstream/v1", retries=0,
                          transport=httpx.MockTransport(handler))
    await engine.start()
    try:
        assert (await engine.health()).loaded
        up["ok"] = False
        engine._models_at = 0  # the model list is cached for a few seconds
        health = await engine.health()
        assert not health.loaded
        assert "cannot be reached" in health.detail
    finally:
        await engine.close()
