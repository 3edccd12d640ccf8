"""The OpenAI wire mapping: request bodies, non-streamed answers and SSE chunks (no I/O)."""

from __future__ import annotations

import json

import httpx
import pytest

from evalserve.engines.base import GenerationRequest, OutputConstraint
from evalserve.engines.openai.protocol import StreamState, generation_result, request_body
from evalserve.errors import UpstreamError


def chat(**kw: object) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": "hello"}], **kw)  # type: ignore[arg-type]


def words(text: str) -> int:
    return len(text.split())


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
    json_object = request_body(chat(constraint=OutputConstraint(json_object=True)), "m",
                               stream=False)
    assert json_object["response_format"] == {"type": "json_object"}


def test_sampling_fields_are_sent_only_when_they_differ_from_the_defaults() -> None:
    plain = request_body(GenerationRequest(prompt="p"), "m", stream=False)
    assert plain == {"model": "m", "max_tokens": 256, "temperature": 1.0, "top_p": 1.0, "n": 1,
                     "prompt": "p"}
    tuned = request_body(chat(stop=["\n"], seed=3, presence_penalty=0.5, frequency_penalty=0.25,
                              repetition_penalty=1.1, logprobs=2), "m", stream=False)
    assert (tuned["stop"], tuned["seed"], tuned["presence_penalty"], tuned["frequency_penalty"],
            tuned["repetition_penalty"]) == (["\n"], 3, 0.5, 0.25, 1.1)
    # chat asks for logprobs as a flag plus top_logprobs; completions as a count
    assert (tuned["logprobs"], tuned["top_logprobs"]) == (True, 2)
    assert "prompt" not in tuned and tuned["messages"] == [{"role": "user", "content": "hello"}]


def test_choices_are_ordered_by_index_and_share_the_usage_without_logprobs() -> None:
    body = {"choices": [
        {"index": 1, "text": "b", "finish_reason": "length"},
        {"index": 0, "text": "a", "finish_reason": "content_filter"},
    ], "usage": {"prompt_tokens": 3, "completion_tokens": 8}}
    result = generation_result(httpx.Response(200, json=body), GenerationRequest(prompt="p", n=2),
                               words)
    assert [o.text for o in result.outputs] == ["a", "b"]
    assert [o.index for o in result.outputs] == [0, 1]
    # an unknown finish reason is a stop; the usage is split over the choices
    assert [o.finish_reason for o in result.outputs] == ["stop", "length"]
    assert [o.completion_tokens for o in result.outputs] == [4, 4]
    assert result.prompt_tokens == 3


def test_without_usage_tokens_are_counted_from_logprobs_and_the_prompt_estimated() -> None:
    lp = {"content": [{"token": t, "logprob": -0.5, "top_logprobs": []} for t in ("a", "b", "c")]}
    body = {"choices": [{"index": 0, "message": {"content": "abc"}, "logprobs": lp,
                         "finish_reason": "stop"}]}
    request = chat(logprobs=0)
    result = generation_result(httpx.Response(200, json=body), request, words)
    assert result.outputs[0].completion_tokens == 3
    assert [e.token for e in result.outputs[0].logprobs] == ["a", "b", "c"]
    assert result.prompt_tokens == words(json.dumps(request.messages))


def test_logprobs_are_dropped_when_not_asked_for() -> None:
    lp = {"tokens": ["x"], "token_logprobs": [-1.0], "top_logprobs": [{"x": -1.0}]}
    body = {"choices": [{"text": "x", "logprobs": lp, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    result = generation_result(httpx.Response(200, json=body), GenerationRequest(prompt="p"),
                               words)
    assert result.outputs[0].logprobs is None


@pytest.mark.parametrize("reply", [httpx.Response(200, text="<html>oops</html>"),
                                   httpx.Response(200, json={"object": "list"}),
                                   httpx.Response(200, json=["not", "a", "body"])])
def test_a_body_that_is_no_completion_is_an_upstream_error(reply: httpx.Response) -> None:
    with pytest.raises(UpstreamError, match="malformed completion body"):
        generation_result(reply, GenerationRequest(prompt="p"), words)


@pytest.mark.parametrize("body", [
    {"choices": [1]},
    {"choices": []},
    {"choices": None},
    {"choices": "abc"},
    {"choices": [{"text": "a"}], "usage": "x"},
    {"choices": [{"text": "a"}], "usage": {"completion_tokens": "many"}},
    {"choices": [{"text": "a"}], "usage": {"completion_tokens": 1e400}},
    {"choices": [{"text": 5}]},
    {"choices": [{"message": "hi"}]},
    {"choices": [{"text": "a", "index": "first"}]},
    {"choices": [{"text": "a", "logprobs": {"tokens": ["a"], "token_logprobs": ["?"]}}]},
    {"choices": [{"text": "a", "logprobs": {"tokens": ["a"], "token_logprobs": [-1],
                                            "top_logprobs": [["a"]]}}]},
])
def test_a_malformed_completion_is_an_upstream_error_not_a_crash(body: dict) -> None:
    """Defect: `choices: [1]`, `usage: "x"`, `choices: []` and other malformed upstream
    bodies raised AttributeError/IndexError (a 500 on /v1) or returned no output at all.
    They are an UpstreamError (502 `upstream_error`) naming what was malformed."""
    request = chat(logprobs=2) if "message" in str(body) else GenerationRequest(
        prompt="p", logprobs=2)
    with pytest.raises(UpstreamError, match="the upstream server answered a malformed") as info:
        generation_result(httpx.Response(200, text=json.dumps(body)), request, words)
    assert (info.value.status, info.value.type) == (502, "upstream_error")


def test_non_finite_upstream_alternatives_are_dropped() -> None:
    """Defect: an upstream's -Infinity / NaN logprobs (Python's json reads them) went on to
    the client as invalid JSON."""
    reply = httpx.Response(200, text='{"choices": [{"text": "a", "logprobs": {"tokens": ["a"], '
                           '"token_logprobs": [-0.5], "top_logprobs": [{"a": -0.5, '
                           '"b": -Infinity, "c": NaN, "d": -2.0}]}}]}')
    result = generation_result(reply, GenerationRequest(prompt="p", logprobs=5), words)
    assert result.outputs[0].logprobs[0].top == [("a", -0.5), ("d", -2.0)]


@pytest.mark.parametrize("line", [
    'data: [1, 2]', 'data: {"choices": [1]}', 'data: {"choices": [{"delta": "x"}]}',
    'data: {"choices": [], "usage": "x"}',
])
def test_a_malformed_stream_chunk_is_an_upstream_error(line: str) -> None:
    with pytest.raises(UpstreamError, match="malformed stream chunk"):
        StreamState(chat()).feed(line)


def test_malformed_stream_usage_is_an_upstream_error() -> None:
    state = StreamState(chat())
    state.feed('data: {"choices": [], "usage": {"prompt_tokens": "lots"}}')
    with pytest.raises(UpstreamError, match="malformed stream usage"):
        state.finish(words)


def chunk(text: str | None = None, finish: str | None = None, **choice: object) -> str:
    """One `data:` line of a streamed chat answer."""
    delta = {} if text is None else {"content": text}
    return "data: " + json.dumps({"choices": [{"index": 0, "delta": delta,
                                               "finish_reason": finish, **choice}]})


def test_stream_state_yields_text_then_one_final_delta_with_usage() -> None:
    state = StreamState(chat())
    assert state.feed(": keep-alive comment") == []
    assert [d.text for d in state.feed(chunk("Hel"))] == ["Hel"]
    assert state.feed(chunk("")) == []  # an empty delta (the role) carries nothing
    assert [d.text for d in state.feed(chunk("lo"))] == ["lo"]
    assert state.feed(chunk("!", "length")) == []  # held back for the final delta
    state.feed('data: {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3}}')
    assert not state.done
    state.feed("data: [DONE]")
    assert state.done
    final = state.finish(words)
    assert (final.text, final.finish_reason) == ("!", "length")
    assert (final.prompt_tokens, final.completion_tokens) == (4, 3)


def test_stream_without_usage_counts_deltas_and_estimates_the_prompt() -> None:
    state = StreamState(GenerationRequest(prompt="one two three"))
    state.feed('data: {"choices": [{"index": 0, "text": "a"}]}')
    state.feed('data: {"choices": [{"index": 0, "text": "b"}]}')
    final = state.finish(words)
    assert (final.text, final.finish_reason) == ("", "stop")
    assert (final.prompt_tokens, final.completion_tokens) == (3, 2)


def test_an_aborted_stream_finishes_with_abort() -> None:
    state = StreamState(chat())
    state.feed(chunk("x", "stop"))
    state.abort()
    assert state.finish(words).finish_reason == "abort"


def test_stream_logprobs_are_kept_per_delta() -> None:
    lp = {"content": [{"token": "hi", "logprob": -0.1,
                       "top_logprobs": [{"token": "hi", "logprob": -0.1},
                                        {"token": "yo", "logprob": -2.0}]}]}
    state = StreamState(chat(logprobs=1))
    (delta,) = state.feed(chunk("hi", logprobs=lp))
    assert delta.logprobs is not None and delta.logprobs[0].top == [("hi", -0.1)]


@pytest.mark.parametrize(("line", "message"), [
    ('data: {"error": {"message": "engine died"}}', "upstream: engine died"),
    ('data: {"error": "plain text"}', "upstream: plain text"),
    ("data: {not json", "malformed stream chunk"),
])
def test_error_and_malformed_chunks_are_upstream_errors(line: str, message: str) -> None:
    with pytest.raises(UpstreamError, match=message):
        StreamState(chat()).feed(line)
