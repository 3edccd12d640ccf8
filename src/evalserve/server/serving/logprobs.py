"""Token logprobs in the two OpenAI shapes: completions (`tokens`, `token_logprobs`, ...) and
chat (`content: [{token, logprob, bytes, top_logprobs}]`).

JSON has no infinity or NaN: a token masked by an output constraint has logprob -inf, and an
upstream may send anything. Non-finite alternatives are dropped; a non-finite logprob of the
sampled token is written as -9999.0, as vLLM's OpenAI server does.
"""

from __future__ import annotations

import math
from typing import Any

from evalserve.engines.base import TokenLogprob

__all__ = ["completion_logprobs", "chat_logprobs", "FLOOR"]

#: What a sampled token's -inf (or NaN) logprob is written as.
FLOOR = -9999.0


def _finite(value: float) -> float:
    return value if math.isfinite(value) else FLOOR


def _top(item: TokenLogprob, k: int) -> list[tuple[str, float]]:
    return [(t, v) for t, v in item.top if math.isfinite(v)][:k]


def completion_logprobs(items: list[TokenLogprob], k: int, offset: int = 0) -> dict[str, Any]:
    """Completions-style logprobs; `offset` is where the generated text starts in `text`."""
    tokens, values, tops, offsets = [], [], [], []
    for item in items:
        tokens.append(item.token)
        values.append(_finite(item.logprob))
        top = dict(_top(item, k))
        top.setdefault(item.token, _finite(item.logprob))
        tops.append(top)
        offsets.append(offset)
        offset += len(item.token)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops,
            "text_offset": offsets}


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs(items: list[TokenLogprob], k: int) -> dict[str, Any]:
    """Chat-style logprobs with the top `k` (finite) alternatives per token."""
    content = []
    for item in items:
        entry = _entry(item.token, _finite(item.logprob))
        entry["top_logprobs"] = [_entry(t, lp) for t, lp in _top(item, k)]
        content.append(entry)
    return {"content": content}
