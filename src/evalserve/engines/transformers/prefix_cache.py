"""Reuse the key/value cache of prompt prefixes shared by many requests.

A rubric's instructions and few-shot examples open every judge prompt; computing their
keys and values once and starting each item's prefill after them saves most of the prefill
work of a job (`ENABLE_PREFIX_CACHING`, as in vLLM).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["PrefixCache"]

KV = list[tuple[Any, Any]]


class PrefixCache:
    """A small LRU of prefix token tuples to their per-layer (keys, values), batch size 1."""

    def __init__(self, max_entries: int = 8, min_tokens: int = 32) -> None:
        self.max_entries = max_entries
        self.min_tokens = min_tokens
        self._entries: OrderedDict[tuple[int, ...], KV] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, prompts: list[list[int]], limit: int) -> tuple[int, KV | None]:
        """The longest cached prefix (at most `limit` tokens) that opens every prompt."""
        best: tuple[int, ...] = ()
        for key in self._entries:
            if len(best) < len(key) <= limit and all(
                tuple(p[: len(key)]) == key for p in prompts
            ):
                best = key
        if not best:
            return 0, None
        self._entries.move_to_end(best)
        self.hits += 1
        return len(best), self._entries[best]

    def store(self, prefix: list[int], kv: KV) -> None:
        self._entries[tuple(prefix)] = kv
        self._entries.move_to_end(tuple(prefix))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
