"""The prefix cache: the longest stored prefix that opens every prompt, within a limit; LRU."""

from __future__ import annotations

from evalserve.engines.transformers.prefix_cache import PrefixCache


def kv(tag: str) -> list[tuple[str, str]]:
    return [(f"{tag}-keys", f"{tag}-values")]


def test_lookup_finds_the_longest_prefix_shared_by_every_prompt() -> None:
    cache = PrefixCache(min_tokens=2)
    cache.store([1, 2], kv("short"))
    cache.store([1, 2, 3, 4], kv("long"))
    cache.store([9, 9, 9], kv("other"))
    assert cache.lookup([[1, 2, 3, 4, 5], [1, 2, 3, 4, 6]], limit=10) == (4, kv("long"))
    # one prompt diverges inside the long prefix: only the short one opens both
    assert cache.lookup([[1, 2, 3, 4, 5], [1, 2, 7]], limit=10) == (2, kv("short"))
    assert cache.hits == 2


def test_the_limit_caps_the_prefix_length() -> None:
    cache = PrefixCache()
    cache.store([1, 2], kv("short"))
    cache.store([1, 2, 3, 4], kv("long"))
    assert cache.lookup([[1, 2, 3, 4, 5]], limit=3) == (2, kv("short"))
    assert cache.lookup([[1, 2, 3, 4, 5]], limit=4) == (4, kv("long"))


def test_a_miss_returns_nothing_and_counts_no_hit() -> None:
    cache = PrefixCache()
    assert cache.lookup([[1, 2, 3]], limit=3) == (0, None)
    cache.store([5, 6], kv("x"))
    assert cache.lookup([[1, 2, 3]], limit=3) == (0, None)
    assert cache.lookup([[5, 6, 7], [1, 2, 3]], limit=3) == (0, None)
    assert cache.hits == 0


def test_the_least_recently_used_entry_is_evicted() -> None:
    cache = PrefixCache(max_entries=2)
    cache.store([1], kv("a"))
    cache.store([2], kv("b"))
    cache.lookup([[1, 0]], limit=5)  # "a" is now the most recently used
    cache.store([3], kv("c"))
    assert len(cache) == 2
    assert cache.lookup([[2, 0]], limit=5) == (0, None)
    assert cache.lookup([[1, 0]], limit=5) == (1, kv("a"))
    assert cache.lookup([[3, 0]], limit=5) == (1, kv("c"))


def test_storing_a_prefix_again_replaces_it() -> None:
    cache = PrefixCache()
    cache.store([1, 2], kv("old"))
    cache.store([1, 2], kv("new"))
    assert len(cache) == 1
    assert cache.lookup([[1, 2, 3]], limit=5) == (2, kv("new"))
