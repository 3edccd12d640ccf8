"""The `/predict` library: post-processing, input checks, batch prediction on a fake engine.

Its routes: tests/server/routes/test_predict.py; the real model: tests/e2e/test_predict.py.
"""

from __future__ import annotations

import time

import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.errors import InvalidInputError, PayloadTooLargeError
from evalserve.generation.predict import (
    PredictOptions,
    check_prompts,
    clean_answer,
    collapse_tail_repetition,
    cut_at_stops,
    predict,
    predict_many,
)
from evalserve.settings import load_settings
from tests.fakes import ScriptedEngine, request_text

# ----------------------------------------------------------------------------- post-processing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a sentence repeated, with and without its final separator, Chinese and English
        ("答案是北京。答案是北京。答案是北京。", "答案是北京。"),
        ("北京。北京。北京", "北京。"),
        ("The capital is Paris. The capital is Paris. The capital is Paris.",
         "The capital is Paris."),
        # a loop cut by the token budget: the partial last repetition goes too
        ("I think Paris. Paris. Paris. Par", "I think Paris."),
        ("它有很多名胜古迹，名胜古迹，名胜古迹，名胜古", "它有很多名胜古迹"),
        # words and n-grams
        ("very very very very", "very"),
        ("the answer is 42 the answer is 42 the answer is 42", "the answer is 42"),
        ("好的好的好的好的", "好的"),
        ("x这是一个句子，" * 50, "x这是一个句子"),
        # a repeated sentence beats a repeated word inside it
        ("Rome. Rome is old. Rome is old. Rome is old. Rome is old.", "Rome. Rome is old."),
        # separators left behind by the collapse are dropped
        ("yes, yes, yes,", "yes"),
    ],
)
def test_tail_repetition_is_collapsed_to_one_occurrence(text: str, expected: str) -> None:
    assert collapse_tail_repetition(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The capital of France is Paris.",
        "Paris. Paris.",                      # only twice
        "北京。北京。",
        "1000000000",                         # digits are not a repeated unit
        "Wait...",                            # nor punctuation
        "……",
        "Henry VIII",                         # one letter needs 4+ repeats
        "哈哈哈",
        "banana",
        "Mississippi",
        "0.0.0.0",
        "A. A. B",
        "It is what it is",
    ],
)
def test_legitimate_text_is_left_alone(text: str) -> None:
    assert collapse_tail_repetition(text) == text


def test_repetition_in_the_middle_is_not_touched() -> None:
    text = "好好好学习，天天向上。"
    assert collapse_tail_repetition(text) == text


def test_collapse_is_fast_on_a_long_degenerate_answer() -> None:
    started = time.perf_counter()
    assert collapse_tail_repetition("哈" * 5000) == "哈"
    assert collapse_tail_repetition("答案：" + "北京是首都。" * 800) == "答案：北京是首都。"
    assert time.perf_counter() - started < 1.0


def test_cut_at_stops_takes_the_earliest_stop() -> None:
    assert cut_at_stops("abc<|im_end|>def<|endoftext|>", ["<|endoftext|>", "<|im_end|>"]) == "abc"
    assert cut_at_stops("no stop here", ["<|im_end|>"]) == "no stop here"
    assert cut_at_stops("abc", ["", "c"]) == "ab"


def test_clean_answer_trims_cuts_and_collapses() -> None:
    raw = "  \n北京是中国的首都。北京是中国的首都。北京是中国的首都。<|im_end|><|im_start|>user"
    assert clean_answer(raw) == "北京是中国的首都。"
    assert clean_answer("  Paris.\n\n") == "Paris."


# ----------------------------------------------------------------------------- input checks


def test_check_prompts_accepts_a_string_and_in_batch_mode_a_list() -> None:
    assert check_prompts("q", batch_mode=False, max_chars=10) == ["q"]
    assert check_prompts(["a", "b"], batch_mode=True, max_chars=10) == ["a", "b"]
    assert check_prompts([], batch_mode=True, max_chars=10) == []


@pytest.mark.parametrize(
    ("prompt", "batch", "fragment"),
    [
        (["a"], False, "BATCH_MODE=1"),
        (["a", ["b"]], True, "prompt[1] must be a string, got a list"),
        (["a", 3], True, "prompt[1] must be a string, got int"),
        (None, False, "prompt is required"),
        (5, False, "prompt must be a string, got int"),
        ({"text": "a"}, True, "a string or a list of strings"),
        ("x" * 11, False, "prompt has 11 characters; the limit is 10 (MAX_FIELD_CHARS)"),
        (["ok", "x" * 11], True, "prompt[1] has 11 characters"),
    ],
)
def test_check_prompts_says_what_to_fix(prompt: object, batch: bool, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_prompts(prompt, batch_mode=batch, max_chars=10)
    assert fragment in info.value.message


def test_check_prompts_caps_a_batch_at_max_prompts() -> None:
    """Regression: a batch `/predict` list was unbounded."""
    assert check_prompts(["a"] * 3, batch_mode=True, max_chars=10, max_prompts=3) == ["a"] * 3
    with pytest.raises(PayloadTooLargeError) as info:
        check_prompts(["a"] * 4, batch_mode=True, max_chars=10, max_prompts=3)
    assert info.value.status == 413
    assert info.value.message == ("4 prompts in one request; the limit is 3 "
                                  "(MAX_PREDICT_PROMPTS): split the list into several "
                                  "requests")


# ----------------------------------------------------------------------------- prediction


def _echo(request: GenerationRequest) -> str:
    return f"answer to {request_text(request)}"


def test_options_come_from_settings() -> None:
    settings = load_settings(max_new_tokens=7, temperature=0.0, top_p=0.5, repeat_penalty=1.3,
                             max_field_chars=99, max_model_len=128)
    options = PredictOptions.from_settings(settings, seed=3)
    assert (options.max_tokens, options.temperature, options.top_p,
            options.repetition_penalty) == (7, 0.0, 0.5, 1.3)
    assert (options.max_prompt_chars, options.max_prompt_tokens, options.seed) == (99, 127, 3)


async def test_prompts_go_to_the_engine_together_as_chat_messages() -> None:
    engine = ScriptedEngine(_echo, delay=0.05)
    options = PredictOptions(max_tokens=9, temperature=0.0, top_p=0.8, repetition_penalty=1.2)
    prompts = [f"q{i}" for i in range(20)]
    answers = await predict(engine, prompts, options)
    assert answers == [f"answer to q{i}" for i in range(20)]
    assert engine.max_in_flight == 20  # one batch, not one after another
    first = engine.requests[0]
    assert first.prompt is None
    assert first.messages == [{"role": "user", "content": "q0"}]
    assert (first.max_tokens, first.temperature, first.top_p, first.repetition_penalty) == (
        9, 0.0, 0.8, 1.2)
    assert "<|im_end|>" in first.stop


async def test_blank_prompts_are_answered_empty_without_generating() -> None:
    engine = ScriptedEngine(_echo)
    answers = await predict(engine, ["a", "  ", "", "b"], PredictOptions())
    assert answers == ["answer to a", "", "", "answer to b"]
    assert [request_text(r) for r in engine.requests] == ["a", "b"]
    assert await predict(engine, [], PredictOptions()) == []


async def test_answers_are_post_processed_and_token_counts_kept() -> None:
    engine = ScriptedEngine(lambda r: " 北京。北京。北京。北京。<|im_end|>x ")
    [pred] = await predict_many(engine, ["首都？"], PredictOptions())
    assert pred.text == "北京。"
    assert pred.raw_text.startswith(" 北京。")
    assert pred.completion_tokens >= 1


async def test_one_failing_prompt_aborts_the_rest_of_the_batch() -> None:
    def script(request: GenerationRequest) -> str:
        if request_text(request) == "bad":
            raise InvalidInputError("the prompt has 5000 tokens")
        return "ok"

    engine = ScriptedEngine(script, delay=0.02)
    with pytest.raises(InvalidInputError, match="5000 tokens"):
        await predict(engine, ["a", "bad", "c"], PredictOptions())
    assert len(engine.aborted) == 3


async def test_prompt_over_the_context_is_rejected_before_generating() -> None:
    """Also: long prompts are counted off the event loop (a 1 MB prompt froze every route
    while it was tokenised)."""
    import threading

    threads = []

    class Counting(ScriptedEngine):
        def count_tokens(self, text: str) -> int:
            threads.append(threading.current_thread())
            return len(text)

    engine = Counting(_echo)
    options = PredictOptions(max_prompt_tokens=50)
    with pytest.raises(InvalidInputError, match=r"prompt\[1\] has about 60 tokens.*at most 50"):
        await predict(engine, ["short", "y" * 60], options)
    assert engine.requests == []
    assert threads and threading.main_thread() not in threads
