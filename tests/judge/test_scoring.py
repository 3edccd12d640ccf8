"""score_expected / score_probs from the logprobs at the score token."""

from __future__ import annotations

import math

import pytest

from evalserve.engines.base import TokenLogprob
from evalserve.judge.scoring import (
    find_score_token,
    label_distribution,
    scale_is_prefix_free,
    score_distribution,
)

SCALE = [1, 2, 3, 4, 5]


def _tokens(pieces: list[str], at: int, top: list[tuple[str, float]]) -> list[TokenLogprob]:
    out = [TokenLogprob(p, -0.01) for p in pieces]
    out[at] = TokenLogprob(pieces[at], dict(top).get(pieces[at], -0.1), top)
    return out


def test_distribution_renormalises_over_scale_tokens() -> None:
    pieces = ['{"', "feedback", '":', ' "', "ok", '",', ' "', "score", '":', " ", "4", "}"]
    top = [("4", math.log(0.5)), ("3", math.log(0.2)), ("x", math.log(0.2)),
           ("5", math.log(0.1))]
    text = "".join(pieces)
    dist = score_distribution(_tokens(pieces, 10, top), text.rindex("4"), SCALE, text=text)
    assert dist is not None
    assert dist.probs == {1: 0.0, 2: 0.0, 3: 0.25, 4: 0.625, 5: 0.125}
    assert dist.expected == pytest.approx(3 * 0.25 + 4 * 0.625 + 5 * 0.125)
    assert sum(dist.probs.values()) == pytest.approx(1.0)


def test_merged_prefix_token_and_space_variants() -> None:
    # the score digit is merged with the colon: alternatives must share the prefix
    pieces = ['{"score', '":4', "}"]
    top = [('":4', math.log(0.6)), ('":2', math.log(0.3)), ('": ', math.log(0.1))]
    text = "".join(pieces)
    offset = text.index("4")
    assert find_score_token(_tokens(pieces, 1, top), offset) == (1, '":')
    dist = score_distribution(_tokens(pieces, 1, top), offset, SCALE)
    assert dist is not None and dist.probs[4] == pytest.approx(2 / 3, abs=1e-6)
    # " 4" and "4" both count for 4
    spaced = [("4", math.log(0.3)), (" 4", math.log(0.3)), ("2", math.log(0.4))]
    dist = score_distribution(_tokens(["x", "4"], 1, spaced), 1, SCALE)
    assert dist is not None and dist.probs[4] == pytest.approx(0.6)


def test_sampled_token_outside_top_still_counts() -> None:
    entries = [TokenLogprob("2", math.log(0.1), [("4", math.log(0.3))])]
    dist = score_distribution(entries, 0, SCALE)
    assert dist is not None and dist.probs[2] == pytest.approx(0.25)


def test_no_distribution_when_unknowable() -> None:
    entries = [TokenLogprob("4", -0.1, [("4", -0.1)])]
    assert score_distribution(None, 0, SCALE) is None
    assert score_distribution(entries, None, SCALE) is None
    assert score_distribution(entries, 5, SCALE) is None  # offset past the tokens
    assert score_distribution([TokenLogprob("x", -0.1, [("y", -1.0)])], 0, SCALE) is None
    assert not scale_is_prefix_free([1, 5, 10]) and scale_is_prefix_free([0, 5, 9])
    assert score_distribution(entries, 0, [1, 4, 10]) is None


def test_realigns_when_token_texts_differ_from_text() -> None:
    # a multi-byte character decoded in the text but split into two byte tokens
    pieces = ["\ufffd", "\ufffd", ' "score": ', "3"]
    top = [("3", math.log(0.5)), ("2", math.log(0.5))]
    text = 'é "score": 3'
    dist = score_distribution(_tokens(pieces, 3, top), text.index("3"), SCALE, text=text)
    assert dist is not None and dist.expected == pytest.approx(2.5)


def test_label_distribution_reads_verdict_labels_and_their_first_tokens() -> None:
    """`tie` may be split (`t` + `ie`): a token that starts exactly one label counts for it."""
    before = '{"verdict": "'
    top = [("A", math.log(0.5)), ("B", math.log(0.3)), ("t", math.log(0.15)),
           ("x", math.log(0.05))]
    logprobs = [TokenLogprob(before, -0.01), TokenLogprob("A", math.log(0.5), top),
                TokenLogprob('"}', -0.01)]
    dist = label_distribution(logprobs, len(before), ("A", "B", "tie"), text=before + 'A"}')
    assert dist == pytest.approx({"A": 0.5 / 0.95, "B": 0.3 / 0.95, "tie": 0.15 / 0.95},
                                 abs=1e-6)
    assert label_distribution(None, 3, ("A", "B")) is None
    assert label_distribution(logprobs, None, ("A", "B")) is None
