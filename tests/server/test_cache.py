"""Response cache: keys, LRU/TTL, which requests are cached, and Redis (real redis-server)."""

from __future__ import annotations

import pytest

from evalserve.errors import EngineError
from evalserve.server.cache import (
    REDIS_PREFIX,
    MemoryCache,
    RedisCache,
    cache_key,
    create_cache,
    is_cacheable,
)
from evalserve.server.protocol.openai import CompletionRequest
from tests.fakes import ScriptedEngine
from tests.redis_server import redis_server_fixture
from tests.server.openai_app import chat_body, make_settings, running_app

redis_server = pytest.fixture(scope="module")(redis_server_fixture)


def test_key_is_canonical_over_defaults_numbers_and_field_order() -> None:
    a = CompletionRequest.model_validate({"model": "m", "prompt": "p", "temperature": 0})
    b = CompletionRequest.model_validate({"temperature": 0.0, "prompt": "p", "model": "m",
                                          "user_agent_junk": 1, "top_p": 1})
    c = CompletionRequest.model_validate({"model": "m", "prompt": "q", "temperature": 0})
    key = cache_key("/v1/completions", "m", a.model_dump(mode="json"))
    assert key == cache_key("/v1/completions", "m", b.model_dump(mode="json"))
    assert key != cache_key("/v1/completions", "m", c.model_dump(mode="json"))
    assert key != cache_key("/v1/completions", "other", a.model_dump(mode="json"))
    assert key != cache_key("/v1/chat/completions", "m", a.model_dump(mode="json"))


def test_only_deterministic_unstreamed_requests_are_cacheable() -> None:
    assert is_cacheable(False, 0.0, None) and is_cacheable(False, 0.8, 42)
    assert not is_cacheable(False, 0.8, None)
    assert not is_cacheable(True, 0.0, 1)


async def test_memory_cache_evicts_least_recently_used_and_expires(monkeypatch) -> None:  # noqa: ANN001
    now = [1000.0]
    monkeypatch.setattr("evalserve.server.cache.time.monotonic", lambda: now[0])
    cache = MemoryCache(ttl=60, max_entries=2)
    await cache.set("a", b"A")
    await cache.set("b", b"B")
    assert await cache.get("a") == b"A"  # a is now the most recent
    await cache.set("c", b"C")
    assert await cache.get("b") is None and await cache.get("a") == b"A" and len(cache) == 2
    now[0] += 61
    assert await cache.get("a") is None and await cache.get("c") is None


def test_ttl_zero_disables_the_cache(settings) -> None:  # noqa: ANN001
    assert create_cache(make_settings(settings, cache_ttl_seconds=0)) is None
    assert isinstance(create_cache(settings), MemoryCache)


async def test_identical_deterministic_request_is_answered_from_cache(settings) -> None:  # noqa: ANN001
    engine = ScriptedEngine(lambda r: "cached text")
    async with running_app(make_settings(settings), engine) as (_, client):
        body = chat_body("same", temperature=0)
        first = await client.post("/v1/chat/completions", json=body)
        second = await client.post("/v1/chat/completions", json={**body, "temperature": 0.0})
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
        assert second.json() == first.json()
        assert len(engine.requests) == 1
        seeded = chat_body("same", temperature=0.9, seed=7)
        await client.post("/v1/chat/completions", json=seeded)
        again = await client.post("/v1/chat/completions", json=seeded)
        assert again.headers["x-cache"] == "hit" and len(engine.requests) == 2
        sampled = chat_body("same", temperature=0.9)
        await client.post("/v1/chat/completions", json=sampled)
        r = await client.post("/v1/chat/completions", json=sampled)
        assert r.headers["x-cache"] == "miss" and len(engine.requests) == 4


async def test_errors_are_never_cached(settings) -> None:  # noqa: ANN001
    fail = [True]

    def script(request):  # noqa: ANN001, ANN202
        if fail[0]:
            raise EngineError("boom")
        return "recovered"

    engine = ScriptedEngine(script)
    async with running_app(make_settings(settings), engine) as (_, client):
        body = {"model": "scripted", "prompt": "p", "temperature": 0}
        assert (await client.post("/v1/completions", json=body)).status_code == 500
        fail[0] = False
        ok = await client.post("/v1/completions", json=body)
        assert ok.headers["x-cache"] == "miss" and ok.json()["choices"][0]["text"] == "recovered"


async def test_redis_cache_shares_entries_under_the_seed_prefix(redis_server) -> None:  # noqa: ANN001
    import redis.asyncio as aioredis

    one = RedisCache(redis_server.url, ttl=30)
    two = RedisCache(redis_server.url, ttl=30)
    await one.set("v1:completions:abc", b'{"x":1}')
    assert await two.get("v1:completions:abc") == b'{"x":1}'
    raw = aioredis.from_url(redis_server.url)
    assert 0 < await raw.ttl(REDIS_PREFIX + "v1:completions:abc") <= 30
    await raw.aclose()
    for cache in (one, two):
        await cache.close()


async def test_unreachable_redis_is_a_miss_not_an_error() -> None:
    from tests.redis_server import _free_port

    cache = RedisCache(f"redis://127.0.0.1:{_free_port()}/0", ttl=30)
    assert await cache.get("k") is None
    await cache.set("k", b"v")  # logged, not raised
    await cache.close()


async def test_the_cache_is_per_caller_unless_shared(settings) -> None:  # noqa: ANN001
    """Regression: the response cache was shared by every API key, so `X-Cache: hit` told one
    caller what another had sent (and gave them its answer)."""
    engine = ScriptedEngine(lambda r: "secret answer")
    body = chat_body("what a student wrote", temperature=0)
    async with running_app(make_settings(settings, api_token="one,two"), engine,
                           token="one") as (_, client):
        first = await client.post("/v1/chat/completions", json=body)
        other = await client.post("/v1/chat/completions", json=body,
                                  headers={"Authorization": "Bearer two"})
        again = await client.post("/v1/chat/completions", json=body)
    assert [r.headers["x-cache"] for r in (first, other, again)] == ["miss", "miss", "hit"]
    assert other.json()["id"] != first.json()["id"] and again.json() == first.json()
    assert len(engine.requests) == 2

    shared = make_settings(settings, api_token="one,two", cache_shared=True)
    async with running_app(shared, token="one") as (_, client):
        first = await client.post("/v1/chat/completions", json=body)
        other = await client.post("/v1/chat/completions", json=body,
                                  headers={"Authorization": "Bearer two"})
    assert (first.headers["x-cache"], other.headers["x-cache"]) == ("miss", "hit")
    assert other.json() == first.json()

    async with running_app(make_settings(settings)) as (_, client):  # single-user: shared
        await client.post("/v1/chat/completions", json=body)
        r = await client.post("/v1/chat/completions", json=body,
                              headers={"Authorization": "Bearer anything"})
    assert r.headers["x-cache"] == "hit"


def test_owner_is_part_of_the_key() -> None:
    canonical = {"model": "m", "prompt": "p"}
    shared = cache_key("/v1/completions", "m", canonical)
    assert shared == cache_key("/v1/completions", "m", canonical, None)
    assert cache_key("/v1/completions", "m", canonical, "k1") not in (
        shared, cache_key("/v1/completions", "m", canonical, "k2"))


async def test_memory_cache_is_bounded_in_bytes() -> None:
    """Regression: the in-process cache was bounded by entries only (10,000 bodies of any
    size)."""
    cache = MemoryCache(ttl=60, max_entries=100, max_bytes=10)
    await cache.set("a", b"A" * 4)
    await cache.set("b", b"B" * 4)
    await cache.set("a", b"a" * 5)  # replaced: its old size is not counted twice
    assert (cache.bytes, len(cache)) == (9, 2)
    await cache.set("c", b"C" * 3)  # 12 > 10: the least recently used (b) goes
    assert await cache.get("b") is None and await cache.get("a") == b"a" * 5
    assert cache.bytes == 8
    await cache.set("huge", b"H" * 11)  # never fits: not stored, nothing evicted for it
    assert await cache.get("huge") is None and (cache.bytes, len(cache)) == (8, 2)


def test_create_cache_applies_cache_max_bytes(settings) -> None:  # noqa: ANN001
    cache = create_cache(make_settings(settings, cache_max_bytes=1234))
    assert isinstance(cache, MemoryCache) and cache.max_bytes == 1234
