"""One sequence's decoding state: streamed text deltas, finish reasons (length, end of
sequence, stop strings, a finished grammar, abort), held-back text and per-delta logprobs."""

from __future__ import annotations

from typing import Any

from evalserve.engines.base import TokenLogprob
from tests.engines.transformers.tiny import sequence

NO_EOS: frozenset[int] = frozenset()


def ids(text: str) -> list[int]:
    """The char tokenizer's ids of `text` (token i is chr(32 + i))."""
    return [ord(c) - 32 for c in text]


def feed(s: Any, text: str, eos: frozenset[int] = NO_EOS) -> None:
    for token in ids(text):
        if s.finish_reason is None:
            s.append(token, eos, None)


def test_text_streams_token_by_token_and_the_budget_ends_with_length() -> None:
    s, out = sequence(ids("abc"), max_tokens=4)
    feed(s, "wxyz")
    assert [d.text for d in out.deltas] == ["w", "x", "y", "z"]
    final = out.deltas[-1]
    assert (final.finish_reason, final.prompt_tokens, final.completion_tokens) == ("length", 3, 4)
    assert all(d.finish_reason is None for d in out.deltas[:-1])
    assert s.finish_reason == "length"


def test_positions_and_last_token_follow_the_output() -> None:
    s, _ = sequence(ids("abc"), max_tokens=8)
    feed(s, "x")
    assert (s.last_token, s.position) == (ids("x")[0], 3)  # the 4th token, position id 3
    feed(s, "y")
    assert (s.last_token, s.position) == (ids("y")[0], 4)
    assert s.greedy
    assert not sequence(ids("a"), temperature=0.7)[0].greedy


def test_an_end_of_sequence_token_stops_and_is_counted_but_not_text() -> None:
    eos = ids("#")[0]
    s, out = sequence(ids("a"), max_tokens=10, logprobs=0)
    for token in ids("hi#"):
        s.append(token, frozenset({eos}), TokenLogprob(chr(32 + token), -0.5))
    final = out.deltas[-1]
    assert out.text == "hi" and final.finish_reason == "stop"
    assert final.completion_tokens == 3
    assert len(s.logprobs) == 2  # the end-of-sequence token has no logprob entry


def test_a_stop_string_cuts_the_text_and_is_never_streamed() -> None:
    s, out = sequence(ids("a"), max_tokens=20, stop=["XY"])
    feed(s, "abXYcd")
    assert out.text == "ab" and s.finish_reason == "stop"
    assert not any("X" in d.text for d in out.deltas)  # held back until it could not start a stop
    assert out.deltas[-1].completion_tokens == 4


def test_text_that_may_begin_a_stop_string_is_released_once_it_does_not() -> None:
    s, out = sequence(ids("a"), max_tokens=5, stop=["XY"])
    feed(s, "aXbcd")
    assert out.text == "aXbcd" and s.finish_reason == "length"
    # each character is released once the next one shows it does not start "XY"
    assert [d.text for d in out.deltas] == ["a", "X", "b", "cd"]


def test_the_earliest_of_several_stop_strings_wins() -> None:
    s, out = sequence(ids("a"), max_tokens=20, stop=["cd", "b"])
    feed(s, "abcd")
    assert out.text == "a" and s.finish_reason == "stop"


def test_an_incomplete_character_is_held_back_and_dropped_at_the_end() -> None:
    def decoder(tokens: list[int]) -> str:
        # tokens 1 and 2 are the two bytes of "é"; a lone 1 decodes to the replacement char
        raw = "".join({1: "\x01", 2: "\x02"}.get(t, chr(96 + t)) for t in tokens)
        return raw.replace("\x01\x02", "é").replace("\x01", "\ufffd")

    s, out = sequence([5], max_tokens=3, decoder=decoder)
    s.append(3, NO_EOS, None)  # "c"
    s.append(1, NO_EOS, None)  # half of "é": nothing streamed
    assert [d.text for d in out.deltas] == ["c"]
    s.append(2, NO_EOS, None)  # completes it, and the budget
    assert out.text == "cé" and s.finish_reason == "length"
    t, cut = sequence([5], max_tokens=2, decoder=decoder)
    t.append(3, NO_EOS, None)
    t.append(1, NO_EOS, None)  # the budget ends inside the character
    assert cut.text == "c" and "\ufffd" not in cut.text


def test_logprobs_go_with_the_delta_that_carries_their_text() -> None:
    s, out = sequence(ids("a"), max_tokens=3, logprobs=1)
    for i, token in enumerate(ids("xyz")):
        s.append(token, NO_EOS, TokenLogprob(chr(32 + token), -float(i)))
    assert [[lp.token for lp in d.logprobs or []] for d in out.deltas] == [["x"], ["y"], ["z"]]
    plain, plain_out = sequence(ids("a"), max_tokens=2)
    for token in ids("xy"):
        plain.append(token, NO_EOS, TokenLogprob("?", -1.0))
    assert all(d.logprobs is None for d in plain_out.deltas)  # not asked for


class Matcher:
    """A grammar matcher that terminates after `length` tokens."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.accepted: list[int] = []

    def accept_token(self, token: int) -> None:
        self.accepted.append(token)

    def is_terminated(self) -> bool:
        return len(self.accepted) >= self.length


def test_a_finished_grammar_stops_the_sequence() -> None:
    s, out = sequence(ids("a"), max_tokens=10)
    s.matcher = Matcher(2)
    feed(s, "xyz")
    assert out.text == "xy" and s.finish_reason == "stop"
    assert s.matcher.accepted == ids("xy")


def test_abort_finishes_once_with_what_was_decoded() -> None:
    s, out = sequence(ids("a"), max_tokens=10)
    feed(s, "xy")
    s.abort()
    s.abort()
    finals = [d for d in out.deltas if d.finish_reason is not None]
    assert len(finals) == 1 and finals[0].finish_reason == "abort"
    assert finals[0].completion_tokens == 2 and out.text == "xy"
