"""Token logprobs in the completions and chat shapes, as pure functions, and through the
serving layer (always valid JSON)."""

from __future__ import annotations

import json
from typing import Any

from evalserve.engines.base import TokenLogprob
from evalserve.server.serving.logprobs import FLOOR, chat_logprobs, completion_logprobs
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine
from tests.server.openai_app import chat_body, running_app

TOKENS = [TokenLogprob("Hel", -0.1, [("Hel", -0.1), ("He", -2.0), ("H", -3.0)]),
          TokenLogprob("lo", -0.7, [("p", -0.5), ("lo", -0.7)]),
          TokenLogprob(" café", -1.25, [])]


def test_completion_shape_is_parallel_lists() -> None:
    lp = completion_logprobs(TOKENS, 2)
    assert lp["tokens"] == ["Hel", "lo", " café"]
    assert lp["token_logprobs"] == [-0.1, -0.7, -1.25]
    assert lp["top_logprobs"] == [{"Hel": -0.1, "He": -2.0}, {"p": -0.5, "lo": -0.7},
                                  {" café": -1.25}]


def test_completion_text_offsets_count_characters_from_the_offset() -> None:
    assert completion_logprobs(TOKENS, 1)["text_offset"] == [0, 3, 5]
    # " café" is 5 characters (6 UTF-8 bytes): offsets are in characters of `text`
    more = TOKENS + [TokenLogprob("!", -0.2)]
    assert completion_logprobs(more, 1, offset=10)["text_offset"] == [10, 13, 15, 20]


def test_completion_top_always_holds_the_sampled_token() -> None:
    # k=1 where the sampled token was not the most likely one: both appear
    lp = completion_logprobs(TOKENS, 1)
    assert lp["top_logprobs"][1] == {"p": -0.5, "lo": -0.7}
    # k=0: only the sampled token
    assert completion_logprobs(TOKENS, 0)["top_logprobs"] == [
        {"Hel": -0.1}, {"lo": -0.7}, {" café": -1.25}]


def test_completion_of_no_tokens_is_empty_lists() -> None:
    assert completion_logprobs([], 3, offset=4) == {
        "tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}


def test_chat_entries_carry_utf8_bytes_and_the_top_k() -> None:
    content = chat_logprobs(TOKENS, 2)["content"]
    assert [e["token"] for e in content] == ["Hel", "lo", " café"]
    assert content[2]["bytes"] == list(" café".encode()) == [32, 99, 97, 102, 195, 169]
    assert content[0]["top_logprobs"] == [
        {"token": "Hel", "logprob": -0.1, "bytes": [72, 101, 108]},
        {"token": "He", "logprob": -2.0, "bytes": [72, 101]}]
    # unlike completions, chat does not add the sampled token to its alternatives
    assert [t["token"] for t in content[1]["top_logprobs"]] == ["p", "lo"]
    assert content[2]["top_logprobs"] == []
    assert content[1]["logprob"] == -0.7


def test_chat_with_k_zero_and_no_tokens() -> None:
    assert [e["top_logprobs"] for e in chat_logprobs(TOKENS, 0)["content"]] == [[], [], []]
    assert chat_logprobs([], 5) == {"content": []}


MASKED = [TokenLogprob("yes", -0.05, [("yes", -0.05), ("no", -3.0), ("x", float("-inf")),
                                      ("y", float("nan"))]),
          TokenLogprob("!", float("-inf"), [("!", float("-inf"))])]


def test_non_finite_alternatives_are_dropped_and_the_sampled_one_floored() -> None:
    """Defect: constrained logprobs emitted `-Infinity` (masked tokens among the top
    alternatives), which is not JSON."""
    lp = completion_logprobs(MASKED, 4)
    assert lp["top_logprobs"] == [{"yes": -0.05, "no": -3.0}, {"!": FLOOR}]
    assert lp["token_logprobs"] == [-0.05, FLOOR]
    content = chat_logprobs(MASKED, 4)["content"]
    assert [[t["token"] for t in e["top_logprobs"]] for e in content] == [["yes", "no"], []]
    assert content[1]["logprob"] == FLOOR == -9999.0
    json.dumps([lp, content], allow_nan=False)


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


async def test_every_v1_response_with_masked_logprobs_is_valid_json(settings: Settings) -> None:
    """Defect: `-Infinity` in /v1 logprobs; through the serving layer, streamed or not."""
    engine = ScriptedEngine(lambda r: "yes!", logprobs=MASKED)
    async with running_app(settings, engine) as (_, client):
        completion = await client.post("/v1/completions", json={
            "model": "scripted", "prompt": "p", "logprobs": 5})
        chat = await client.post("/v1/chat/completions", json=chat_body(
            logprobs=True, top_logprobs=5))
    assert completion.status_code == chat.status_code == 200
    lp = strict_json(completion.text)["choices"][0]["logprobs"]
    assert lp["token_logprobs"] == [-0.05, FLOOR]
    content = strict_json(chat.text)["choices"][0]["logprobs"]["content"]
    assert [e["logprob"] for e in content] == [-0.05, FLOOR]
