"""Probability-weighted scores from the token logprobs at the score position.

`score_probs` is the distribution over the scale read from the top alternatives of the token
that carries the score digit(s), renormalised over the scale's tokens found there;
`score_expected` is its mean. Both are left out when the position cannot be found or when the
scale is ambiguous at one token (a score that is a prefix of another, e.g. 1 and 10).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from evalserve.engines.base import TokenLogprob

__all__ = ["ScoreDistribution", "score_distribution", "find_score_token", "scale_is_prefix_free"]


@dataclass
class ScoreDistribution:
    """{score: probability} over the whole scale (summing to 1) and its mean."""

    probs: dict[int, float]
    expected: float


def scale_is_prefix_free(scale: Sequence[int]) -> bool:
    """True when no score's text starts another's (then one token decides the score)."""
    texts = [str(s) for s in scale]
    return not any(a != b and b.startswith(a) for a in texts for b in texts)


def find_score_token(logprobs: Sequence[TokenLogprob], char_offset: int) -> tuple[int, str] | None:
    """The index of the token covering character `char_offset` of the generated text, and the
    text of that token before the offset (a merged prefix such as `":`)."""
    position = 0
    for i, entry in enumerate(logprobs):
        end = position + len(entry.token)
        if position <= char_offset < end:
            return i, entry.token[: char_offset - position]
        position = end
    return None


def _score_of(token: str, prefix: str, labels: dict[str, int]) -> int | None:
    if not token.startswith(prefix):
        return None
    return labels.get(token[len(prefix):].strip())


def score_distribution(
    logprobs: Sequence[TokenLogprob] | None, char_offset: int | None, scale: Sequence[int],
    *, text: str | None = None,
) -> ScoreDistribution | None:
    """The distribution at the token holding the score that starts at `char_offset` of the
    generated text (`text`, when given, is checked against the tokens' concatenation)."""
    if not logprobs or char_offset is None or not scale_is_prefix_free(scale):
        return None
    if text is not None and "".join(t.token for t in logprobs) != text:
        # Token texts and the decoded text disagree (multi-byte characters split across
        # tokens): realign on the score digits from the end, where the score sits.
        char_offset = _realign(logprobs, text, char_offset)
        if char_offset is None:
            return None
    found = find_score_token(logprobs, char_offset)
    if found is None:
        return None
    index, prefix = found
    entry = logprobs[index]
    labels = {str(s): s for s in scale}
    mass: dict[int, float] = {}
    seen: set[str] = set()
    for token, logprob in [(entry.token, entry.logprob), *entry.top]:
        if token in seen:
            continue
        seen.add(token)
        score = _score_of(token, prefix, labels)
        if score is not None and math.isfinite(logprob):
            mass[score] = mass.get(score, 0.0) + math.exp(logprob)
    total = sum(mass.values())
    if total <= 0.0:
        return None
    probs = {s: round(mass.get(s, 0.0) / total, 6) for s in scale}
    expected = sum(s * mass.get(s, 0.0) for s in scale) / total
    return ScoreDistribution(probs=probs, expected=round(expected, 6))


def _realign(logprobs: Sequence[TokenLogprob], text: str, char_offset: int) -> int | None:
    """Map an offset in `text` to the same place in the token concatenation, counting from
    the end (the score is near the end; a mismatch comes from earlier multi-byte text)."""
    joined = "".join(t.token for t in logprobs)
    from_end = len(text) - char_offset
    offset = len(joined) - from_end
    if offset < 0 or joined[offset:] != text[char_offset:]:
        return None
    return offset
