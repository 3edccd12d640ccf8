"""Probability-weighted scores from the token logprobs at the score position.

`score_probs` is the distribution over the scale read from the top alternatives of the token
that carries the score digit(s), renormalised over the scale's tokens found there;
`score_expected` is its mean. Both are left out when the position cannot be found or when the
scale is ambiguous at one token (a score that is a prefix of another, e.g. 1 and 10).
`label_distribution` does the same for a pairwise verdict's labels (`A`, `B`, `tie`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evalserve.engines.base import TokenLogprob

__all__ = ["ScoreDistribution", "score_distribution", "label_distribution", "find_score_token",
           "scale_is_prefix_free"]


@dataclass
class ScoreDistribution:
    """{score: probability} over the whole scale (summing to 1) and its mean."""

    probs: dict[int, float]
    expected: float


def scale_is_prefix_free(scale: Sequence[int] | Sequence[str]) -> bool:
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


def _label_of(token: str, prefix: str, labels: Sequence[str]) -> str | None:
    """The label a token starts: the whole label, or the start of exactly one (`t` of `tie`)."""
    if not token.startswith(prefix):
        return None
    rest = token[len(prefix):].strip()
    if not rest:
        return None
    starting = [label for label in labels if label.startswith(rest)]
    return starting[0] if len(starting) == 1 else None


def label_distribution(
    logprobs: Sequence[TokenLogprob] | None, char_offset: int | None, labels: Sequence[str],
    *, text: str | None = None,
) -> dict[str, float] | None:
    """{label: probability} at the token where the label starting at `char_offset` begins;
    None when it cannot be read (no logprobs, the position not found)."""
    if not logprobs or char_offset is None or not scale_is_prefix_free(labels):
        return None
    mass = _mass(logprobs, char_offset, text, lambda token, prefix: _label_of(token, prefix,
                                                                               labels))
    total = sum(mass.values()) if mass else 0.0
    if total <= 0.0:
        return None
    return {label: round(mass.get(label, 0.0) / total, 6) for label in labels}


def _mass(logprobs: Sequence[TokenLogprob], char_offset: int, text: str | None,
          read: Callable[[str, str], Any]) -> dict[Any, float] | None:
    """Probability mass of each value `read(token, prefix)` finds among the alternatives of
    the token covering `char_offset`."""
    if text is not None and "".join(t.token for t in logprobs) != text:
        # Token texts and the decoded text disagree (multi-byte characters split across
        # tokens): realign on the label from the end, where it sits.
        realigned = _realign(logprobs, text, char_offset)
        if realigned is None:
            return None
        char_offset = realigned
    found = find_score_token(logprobs, char_offset)
    if found is None:
        return None
    index, prefix = found
    entry = logprobs[index]
    mass: dict[Any, float] = {}
    seen: set[str] = set()
    for token, logprob in [(entry.token, entry.logprob), *entry.top]:
        if token in seen:
            continue
        seen.add(token)
        value = read(token, prefix)
        if value is not None and math.isfinite(logprob):
            mass[value] = mass.get(value, 0.0) + math.exp(logprob)
    return mass


def score_distribution(
    logprobs: Sequence[TokenLogprob] | None, char_offset: int | None, scale: Sequence[int],
    *, text: str | None = None,
) -> ScoreDistribution | None:
    """The distribution at the token holding the score that starts at `char_offset` of the
    generated text (`text`, when given, is checked against the tokens' concatenation)."""
    if not logprobs or char_offset is None or not scale_is_prefix_free(scale):
        return None
    labels = {str(s): s for s in scale}
    mass = _mass(logprobs, char_offset, text, lambda token, prefix: _score_of(token, prefix,
                                                                               labels))
    if not mass:
        return None
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
