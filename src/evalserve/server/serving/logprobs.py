"""Token logprobs in the two OpenAI shapes: completions (`tokens`, `token_logprobs`, ...) and
chat (`content: [{token, logprob, bytes, top_logprobs}]`)."""

from __future__ import annotations

from typing import Any

from evalserve.engines.base import TokenLogprob

__all__ = ["completion_logprobs", "chat_logprobs"]


def completion_logprobs(items: list[TokenLogprob], k: int, offset: int = 0) -> dict[str, Any]:
    """Completions-style logprobs; `offset` is where the generated text starts in `text`."""
    tokens, values, tops, offsets = [], [], [], []
    for item in items:
        tokens.append(item.token)
        values.append(item.logprob)
        top = dict(item.top[:k])
        top.setdefault(item.token, item.logprob)
        tops.append(top)
        offsets.append(offset)
        offset += len(item.token)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops,
            "text_offset": offsets}


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs(items: list[TokenLogprob], k: int) -> dict[str, Any]:
    """Chat-style logprobs with the top `k` alternatives per token."""
    content = []
    for item in items:
        entry = _entry(item.token, item.logprob)
        entry["top_logprobs"] = [_entry(t, lp) for t, lp in item.top[:k]]
        content.append(entry)
    return {"content": content}
