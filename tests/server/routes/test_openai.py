"""The /v1 surface on a ScriptedEngine: request mapping, response shapes, streams, errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from evalserve.engines.base import GenerationRequest, StreamDelta, TokenLogprob
from evalserve.server.app import build_app
from tests.fakes import ScriptedEngine
from tests.server.openai_app import chat_body, make_settings, running_app

LOGPROBS = [TokenLogprob("hello", -0.25, [("hello", -0.25), ("hi", -1.5), ("hey", -3.0)]),
            TokenLogprob(" world", -0.5, [(" world", -0.5), (" there", -1.0)])]


def events(text: str) -> list[dict | str]:
    out: list[dict | str] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


async def test_completions_prompt_list_n_usage_echo_and_logprobs(settings) -> None:  # noqa: ANN001
    engine = ScriptedEngine(lambda r: "hello world", logprobs=LOGPROBS)
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/completions", json={
            "model": "scripted", "prompt": ["one two", "three"], "n": 2, "logprobs": 1,
            "echo": True, "stop": "\n", "max_tokens": 5, "seed": 1, "frequency_penalty": 0.5})
        body = r.json()
    assert body["object"] == "text_completion" and body["model"] == "scripted"
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    assert body["choices"][0]["text"] == "one twohello world"
    assert body["choices"][2]["text"] == "threehello world"
    lp = body["choices"][0]["logprobs"]
    assert lp["tokens"] == ["hello", " world"] and lp["token_logprobs"] == [-0.25, -0.5]
    assert lp["top_logprobs"][0] == {"hello": -0.25}
    assert lp["text_offset"] == [7, 12]  # after the echoed prompt
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 8, "total_tokens": 11}
    seen = engine.requests
    assert [r.prompt for r in seen] == ["one two", "three"]
    assert (seen[0].n, seen[0].stop, seen[0].max_tokens, seen[0].logprobs) == (2, ["\n"], 5, 1)
    assert seen[0].frequency_penalty == 0.5 and seen[0].seed == 1


async def test_chat_logprobs_shape_and_defaults(settings) -> None:  # noqa: ANN001
    engine = ScriptedEngine(lambda r: "hello world", logprobs=LOGPROBS)
    s = make_settings(settings, max_new_tokens=17)
    async with running_app(s, engine) as (_, client):
        r = await client.post("/v1/chat/completions", json=chat_body(
            logprobs=True, top_logprobs=2, messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi "},
                                             {"type": "text", "text": "there"}]}],
            tools=[], logit_bias={}, user="u1"))
        body = r.json()
        r2 = await client.post("/v1/chat/completions",
                               json=chat_body(max_tokens=3, max_completion_tokens=9))
        assert r2.status_code == 200
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "hello world"}
    first = choice["logprobs"]["content"][0]
    assert first["token"] == "hello" and first["bytes"] == list(b"hello")
    assert [t["token"] for t in first["top_logprobs"]] == ["hello", "hi"]
    assert engine.requests[0].messages == [{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "hi there"}]
    assert engine.requests[0].max_tokens == 17 and engine.requests[0].logprobs == 2
    assert engine.requests[0].temperature == 1.0
    assert engine.requests[1].max_tokens == 9


async def test_validation_errors_are_422_envelopes_naming_the_field(settings) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings)) as (_, client):
        cases = [
            ({"messages": [{"role": "user", "content": "x"}]}, "model"),
            (chat_body(temperature=3), "temperature"),
            (chat_body(messages=[]), "messages"),
            (chat_body(top_logprobs=50, logprobs=True), "top_logprobs"),
        ]
        for body, field in cases:
            r = await client.post("/v1/chat/completions", json=body)
            assert r.status_code == 422 and field in r.json()["error"]["message"], r.text
        r = await client.post("/v1/completions", json={"model": "scripted", "prompt": []})
        assert r.status_code == 422 and "prompt" in r.json()["error"]["message"]
        r = await client.get("/v1/models/org/not-here")
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


async def test_models_list_and_detail(settings) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings)) as (_, client):
        listing = (await client.get("/v1/models")).json()
        detail = (await client.get("/v1/models/scripted")).json()
    assert listing["object"] == "list" and listing["data"][0]["id"] == "scripted"
    assert listing["data"][0]["object"] == "model"
    assert detail["model"] == "scripted" and detail["status"] == "loaded"
    assert {"gpu_memory_usage", "loaded_at", "created", "owned_by"} <= set(detail)


async def test_stream_chat_role_first_then_content_finish_usage_done(settings) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings)) as (_, client):
        r = await client.post("/v1/chat/completions", json=chat_body(
            stream=True, stream_options={"include_usage": True}))
    assert r.headers["content-type"].startswith("text/event-stream")
    ev = events(r.text)
    assert ev[-1] == "[DONE]"
    chunks = ev[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "hello world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert len({c["id"] for c in chunks}) == 1


async def test_stream_completions_with_n_merges_indices(settings) -> None:  # noqa: ANN001
    engine = ScriptedEngine(lambda r: f"seed {r.seed}")
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/completions", json={
            "model": "scripted", "prompt": "p", "n": 2, "seed": 10, "stream": True})
    chunks = [e for e in events(r.text) if e != "[DONE]"]
    texts: dict[int, str] = {}
    for c in chunks:
        choice = c["choices"][0]
        texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
    assert texts == {0: "seed 10", 1: "seed 11"}
    assert sum(1 for c in chunks if c["choices"][0]["finish_reason"]) == 2


class EndlessEngine(ScriptedEngine):
    """Streams tokens until closed; closing records an abort, as real engines do."""

    def __init__(self) -> None:
        super().__init__(lambda r: "")
        self.sent = 0

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        try:
            while True:
                self.sent += 1
                yield StreamDelta(text="tok ")
                await asyncio.sleep(0.005)
        finally:
            await self.abort(request.request_id)


async def test_client_disconnect_during_a_stream_aborts_the_generation(settings) -> None:  # noqa: ANN001
    engine = EndlessEngine()
    app = build_app(make_settings(settings), engine=engine)
    body = json.dumps(chat_body(stream=True)).encode()
    disconnect = asyncio.Event()
    messages: list[dict] = []

    async def receive() -> dict:
        if not messages:
            messages.append({"type": "sent"})
            return {"type": "http.request", "body": body, "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)
        if sum(1 for m in messages if m.get("type") == "http.response.body") >= 3:
            disconnect.set()

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("test", 80), "headers": [(b"content-type", b"application/json")]}
    async with app.router.lifespan_context(app):
        await app.state.evalserve.wait_engine()
        await asyncio.wait_for(app(scope, receive, send), 10)
    assert len(engine.aborted) == 1 and engine.sent >= 2
    assert any(m.get("type") == "http.response.start" and m["status"] == 200 for m in messages)
