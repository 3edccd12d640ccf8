"""Response cache for deterministic OpenAI requests: Redis with `REDIS_URL`, else in-process.

A request is cacheable when it is not streamed and is deterministic (temperature 0, or a fixed
seed). The key is a hash of the owner, the endpoint, the served model and the canonical
request (the validated wire model, defaults filled in, unknown fields dropped), so `0` and
`0.0` or a reordered body hit the same entry. The owner is the caller's key id, so
`X-Cache: hit` never tells one caller what another sent; `CACHE_SHARED=true`, or single-user
mode (no token configured), shares the entries. Only successful responses are stored; a hit
returns the stored body unchanged (same `id` and `created`). In process the cache is bounded
by entries (`CACHE_MAX_ENTRIES`) and by bytes (`CACHE_MAX_BYTES`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalserve.settings import Settings

__all__ = ["ResponseCache", "MemoryCache", "RedisCache", "cache_key", "is_cacheable",
           "create_cache", "REDIS_PREFIX"]

log = logging.getLogger(__name__)

#: Seed 001's key prefix for cached responses in Redis.
REDIS_PREFIX = "vllm:"


def cache_key(endpoint: str, model: str, canonical: dict[str, Any],
              owner: str | None = None) -> str:
    """Stable key of a request: sha256 over owner (None: shared), endpoint, served model and
    the canonical body."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    scope = "" if owner is None else f"owner:{owner}\n"
    digest = hashlib.sha256(f"{scope}{endpoint}\n{model}\n{text}".encode()).hexdigest()
    return f"{endpoint.strip('/').replace('/', ':')}:{digest}"


def is_cacheable(stream: bool, temperature: float, seed: int | None) -> bool:
    """Only non-streamed, deterministic requests are cached."""
    return not stream and (temperature == 0.0 or seed is not None)


class ResponseCache(ABC):
    """Stores serialized response bodies by key for `ttl` seconds."""

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The stored body, or None on a miss (or when the store cannot be reached)."""

    @abstractmethod
    async def set(self, key: str, body: bytes) -> None:
        """Store `body`; failures are logged, never raised."""

    async def close(self) -> None:
        """Release connections."""


class MemoryCache(ResponseCache):
    """In-process LRU with a TTL; at most `max_entries` bodies of `max_bytes` in all."""

    def __init__(self, ttl: int, max_entries: int, max_bytes: int = 256 * 2**20) -> None:
        super().__init__(ttl)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def _drop(self, key: str) -> None:
        self.bytes -= len(self._data.pop(key)[1])

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, body = entry
        if expires <= time.monotonic():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return body

    async def set(self, key: str, body: bytes) -> None:
        if key in self._data:
            self._drop(key)
        if len(body) > self.max_bytes:  # would evict everything and still not fit
            return
        self._data[key] = (time.monotonic() + self.ttl, body)
        self.bytes += len(body)
        while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._data)))


class RedisCache(ResponseCache):
    """Shared by every replica pointing at the same Redis; keys are `vllm:<endpoint>:<hash>`."""

    def __init__(self, url: str, ttl: int, password: str | None = None) -> None:
        import redis.asyncio as aioredis

        super().__init__(ttl)
        self.client = aioredis.from_url(url, password=password or None,
                                        socket_connect_timeout=2, socket_timeout=2)

    async def get(self, key: str) -> bytes | None:
        try:
            return await self.client.get(REDIS_PREFIX + key)
        except Exception as exc:  # the cache is an optimisation: never fail a request for it
            log.warning("response cache unavailable (REDIS_URL): %s", exc)
            return None

    async def set(self, key: str, body: bytes) -> None:
        try:
            await self.client.set(REDIS_PREFIX + key, body, ex=self.ttl)
        except Exception as exc:
            log.warning("response cache unavailable (REDIS_URL): %s", exc)

    async def close(self) -> None:
        await self.client.aclose()


def create_cache(settings: Settings) -> ResponseCache | None:
    """Redis when REDIS_URL is set, else in-process; None when CACHE_TTL_SECONDS=0."""
    if settings.cache_ttl_seconds == 0:
        return None
    if settings.redis_url:
        return RedisCache(settings.redis_url, settings.cache_ttl_seconds,
                          settings.redis_password)
    return MemoryCache(settings.cache_ttl_seconds, settings.cache_max_entries,
                       settings.cache_max_bytes)

