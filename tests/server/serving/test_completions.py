"""`POST /v1/completions` through the app on a scripted engine: what
tests/server/routes/test_openai.py leaves out (choice order, usage per prompt, echo and
offsets in streams, stream usage and order, errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from evalserve.engines.base import GenerationRequest, StreamDelta, TokenLogprob
from evalserve.errors import UpstreamTimeoutError
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine, request_text
from tests.server.openai_app import make_settings, running_app
from tests.server.routes.test_openai import events as sse_data


def body(**fields: object) -> dict[str, object]:
    return {"model": "scripted", "prompt": "p", **fields}


async def test_choices_are_ordered_prompt_major_and_usage_counts_each_prompt_once(
        settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: f"for {request_text(r)}")
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/completions", json=body(prompt=["a b c", "d"], n=2))
    out = r.json()
    assert out["id"].startswith("cmpl-") and out["object"] == "text_completion"
    assert [(c["index"], c["text"]) for c in out["choices"]] == [
        (0, "for a b c"), (1, "for a b c"), (2, "for d"), (3, "for d")]
    assert all(c["logprobs"] is None and c["finish_reason"] == "stop" for c in out["choices"])
    # 3 + 1 prompt words (not doubled by n); completions 4 + 4 + 2 + 2 words
    assert out["usage"] == {"prompt_tokens": 4, "completion_tokens": 12, "total_tokens": 16}


async def test_stop_and_max_tokens_reach_the_engine_and_default_budget_applies(
        settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "x")
    async with running_app(make_settings(settings, max_new_tokens=33), engine) as (_, client):
        await client.post("/v1/completions", json=body(stop=["\n", ""], max_tokens=3))
        await client.post("/v1/completions", json=body())
    assert (engine.requests[0].stop, engine.requests[0].max_tokens) == (["\n"], 3)
    assert (engine.requests[1].stop, engine.requests[1].max_tokens) == ([], 33)
    assert engine.requests[0].messages is None and engine.requests[0].prompt == "p"


async def test_logprobs_zero_gives_only_the_sampled_tokens(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "ab", logprobs=[
        TokenLogprob("a", -0.5, [("b", -0.1)]), TokenLogprob("b", -0.2, [("b", -0.2)])])
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/completions", json=body(logprobs=0))
    assert r.json()["choices"][0]["logprobs"] == {
        "tokens": ["a", "b"], "token_logprobs": [-0.5, -0.2],
        "top_logprobs": [{"a": -0.5}, {"b": -0.2}], "text_offset": [0, 1]}


async def test_unknown_model_is_a_404_envelope(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "x")
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/completions", json=body(model="text-davinci-003"))
    assert r.status_code == 404
    assert r.json()["error"] == {
        "message": "model 'text-davinci-003' is not served here; use one of: scripted "
                   "(GET /v1/models)",
        "type": "invalid_request_error", "code": "model_not_found"}
    assert engine.requests == []


class TokenStream(ScriptedEngine):
    """Streams the script's words one delta each, with a logprob per word."""

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        self.requests.append(request)
        words = str(self.script(request)).split(" ")
        for i, word in enumerate(words):
            token = word if i == 0 else " " + word
            last = i == len(words) - 1
            yield StreamDelta(token, "stop" if last else None,
                              [TokenLogprob(token, -1.0 - i, [])],
                              len(request_text(request).split()) if last else None,
                              len(words) if last else None)


async def test_stream_echo_prefixes_each_choice_once_and_offsets_continue(
        settings: Settings) -> None:
    engine = TokenStream(lambda r: "x yz")
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/completions", json=body(
            prompt=["Hi", "Hello"], echo=True, logprobs=1, stream=True))
    chunks = sse_data(r.text)[:-1]
    by_index: dict[int, list[dict]] = {0: [], 1: []}
    for c in chunks:
        by_index[c["choices"][0]["index"]].append(c["choices"][0])
    assert [c["text"] for c in by_index[0]] == ["Hix", " yz"]
    assert [c["text"] for c in by_index[1]] == ["Hellox", " yz"]
    # offsets are in the echoed text and run on from chunk to chunk
    assert [c["logprobs"]["text_offset"] for c in by_index[0]] == [[2], [3]]
    assert [c["logprobs"]["text_offset"] for c in by_index[1]] == [[5], [6]]
    assert [c["logprobs"]["tokens"] for c in by_index[1]] == [["x"], [" yz"]]
    assert [c["finish_reason"] for c in by_index[0]] == [None, "stop"]


async def test_stream_order_chunks_then_usage_then_done(settings: Settings) -> None:
    engine = TokenStream(lambda r: "one two")
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/completions", json=body(
            prompt=["a b", "c"], n=2, stream=True, stream_options={"include_usage": True}))
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_data(r.text)
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    *chunks, usage = events[:-1]
    assert all(c["object"] == "text_completion" for c in events[:-1])
    assert len({c["id"] for c in events[:-1]}) == 1
    assert sorted(c["choices"][0]["index"] for c in chunks
                  if c["choices"][0]["finish_reason"]) == [0, 1, 2, 3]
    assert usage["choices"] == []
    # each prompt counted once (2 + 1), four choices of 2 tokens
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 8, "total_tokens": 11}
    seen = sorted((q.prompt, q.seed) for q in engine.requests)
    assert seen == [("a b", None), ("a b", None), ("c", None), ("c", None)]


async def test_stream_seeds_step_per_choice(settings: Settings) -> None:
    engine = TokenStream(lambda r: "x")
    async with running_app(make_settings(settings), engine) as (_, client):
        await client.post("/v1/completions", json=body(n=3, seed=7, stream=True))
    assert sorted(q.seed for q in engine.requests) == [7, 8, 9]
    assert all(q.n == 1 for q in engine.requests)


class TimesOut(ScriptedEngine):
    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        yield StreamDelta("partial")
        raise UpstreamTimeoutError("the upstream stopped streaming for 30 s")


async def test_stream_failure_midway_is_an_error_chunk_before_done(settings: Settings) -> None:
    async with running_app(make_settings(settings), TimesOut(lambda r: "")) as (_, client):
        r = await client.post("/v1/completions", json=body(stream=True))
    events = sse_data(r.text)
    assert events[0]["choices"][0]["text"] == "partial"
    assert events[1:] == [{"error": {"message": "the upstream stopped streaming for 30 s",
                                     "type": "upstream_error", "code": "gateway_timeout"}},
                          "[DONE]"]


async def test_an_empty_prompt_list_is_refused_before_the_engine(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "x")
    async with running_app(make_settings(settings), engine) as (_, client):
        r = await client.post("/v1/completions", json=body(prompt=[], stream=True))
    assert r.status_code == 422
    assert r.json()["error"] == {
        "message": "prompt must be a string or a non-empty list of strings",
        "type": "invalid_request_error", "code": "invalid_input"}
    assert engine.requests == []


async def test_prompt_lists_are_capped_by_max_prompts_per_request(settings: Settings) -> None:
    """Regression: `/v1/completions` prompt lists were unbounded (`["x"]*200000`)."""
    engine = ScriptedEngine(lambda r: "x")
    s = make_settings(settings, max_prompts_per_request=3)
    async with running_app(s, engine) as (_, client):
        r = await client.post("/v1/completions", json=body(prompt=["a"] * 4))
        assert r.status_code == 413
        error = r.json()["error"]
        assert error["code"] == "payload_too_large"
        assert error["message"] == ("4 prompts in one request; the limit is 3 "
                                    "(MAX_PROMPTS_PER_REQUEST): split the request into several")
        assert (await client.post("/v1/completions", json=body(prompt=["a"] * 3))).status_code \
            == 200
    assert len(engine.requests) == 3


async def test_prompts_times_n_are_capped_by_max_sequences_per_request(
        settings: Settings) -> None:
    """Regression: prompts × `n` was unbounded (`n: 16` on a long list)."""
    engine = ScriptedEngine(lambda r: "x")
    s = make_settings(settings, max_sequences_per_request=8)
    async with running_app(s, engine) as (_, client):
        r = await client.post("/v1/completions", json=body(prompt=["a", "b", "c"], n=3))
        assert r.status_code == 413
        message = r.json()["error"]["message"]
        assert "9 sequences (prompts × n)" in message and "limit is 8" in message
        assert "MAX_SEQUENCES_PER_REQUEST" in message
        r = await client.post("/v1/completions", json=body(prompt=["a", "b"], n=4, stream=True))
        assert r.status_code == 200 and "[DONE]" in r.text  # 8 fits, streamed too
    assert len(engine.requests) == 8
