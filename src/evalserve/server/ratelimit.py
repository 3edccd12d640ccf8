"""Per-key, per-model rate limits over a moving window (`limits`), in memory or in Redis.

Default tiers follow seed 001, by the model size read from the model id: up to 7B 100/minute,
13B 50, 30B/40B 40, 70B and larger 20; a smaller or unknown size takes the 7B tier.
`RATE_LIMITS="my-model=30/minute;other=5/second;*=1000/minute"` overrides per model id
(`*`: every other model). With `REDIS_URL` the windows live in Redis, so the limit holds across
replicas. If the store cannot be reached the request is let through (and a warning logged).

In memory the window is a deque of timestamps per (caller, model) in this module: `limits`'
memory storages hop to a thread (asyncio variant) or start a timer thread (sync variant) on
hits, which costs milliseconds per request on a busy machine. Redis uses `limits`' moving window.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from evalserve.errors import ConfigurationError, RateLimitError

if TYPE_CHECKING:
    from limits import RateLimitItem

    from evalserve.settings import Settings

__all__ = ["RateLimiter", "parse_rate_limits", "tier_for", "REDIS_KEY_PREFIX"]

log = logging.getLogger(__name__)

REDIS_KEY_PREFIX = "vllm:ratelimit"

#: (largest size in billions of parameters, limit) in ascending order; seed 001's table.
_TIERS = ((7.0, "100/minute"), (13.0, "50/minute"), (40.0, "40/minute"))
_LARGEST_TIER = "20/minute"
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z])", re.IGNORECASE)


def tier_for(model_id: str) -> str:
    """Seed 001's limit for a model id such as `meta-llama/Llama-2-13b-chat-hf` (50/minute)."""
    sizes = [float(m) for m in _SIZE.findall(model_id.replace("_", "-"))]
    if not sizes:
        return _TIERS[0][1]
    size = max(sizes)
    for largest, limit in _TIERS:
        if size <= largest:
            return limit
    return _LARGEST_TIER


def parse_rate_limits(text: str | None) -> dict[str, str]:
    """`model=limit;model2=limit2` into a dict, each limit checked (`30/minute`, `5/second`)."""
    from limits import parse

    overrides: dict[str, str] = {}
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        model, sep, limit = part.rpartition("=")
        if not sep or not model.strip():
            raise ConfigurationError(
                f"RATE_LIMITS entry {part.strip()!r} must look like `model-id=30/minute`")
        try:
            parse(limit.strip())
        except ValueError:
            raise ConfigurationError(
                f"RATE_LIMITS: {limit.strip()!r} is not a rate such as `30/minute` or "
                "`5/second`") from None
        overrides[model.strip()] = limit.strip()
    return overrides


class MemoryWindows:
    """Moving windows in this process: the times of the hits still inside each window."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, ...], deque[float]] = {}
        self._calls = 0

    def hit(self, item: RateLimitItem, *identifiers: str) -> float | None:
        """Record a hit and return None, or return the seconds until one is allowed."""
        now = time.monotonic()
        span = item.get_expiry()
        key = (str(item), *identifiers)
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - span:
            hits.popleft()
        self._calls += 1
        if self._calls % 10_000 == 0:
            self._sweep(now)
        if len(hits) >= item.amount:
            return hits[-item.amount] + span - now
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] < now - 86_400]:
            del self._hits[key]


class RateLimiter:
    """Moving-window limiter keyed by caller identity and model."""

    def __init__(self, storage: Any = None, overrides: dict[str, str] | None = None) -> None:
        """`storage`: a `limits.aio` storage (Redis), or None for windows in this process."""
        self.storage = storage
        self.memory = MemoryWindows() if storage is None else None
        self.limiter: Any = None
        if storage is not None:
            from limits.aio.strategies import MovingWindowRateLimiter

            self.limiter = MovingWindowRateLimiter(storage)
        self.overrides = overrides or {}
        self._items: dict[str, RateLimitItem] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        overrides = parse_rate_limits(settings.rate_limits)
        if settings.redis_url:
            from limits.aio.storage import RedisStorage

            uri = "async+" + settings.redis_url
            options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
            if settings.redis_password:
                options["password"] = settings.redis_password
            return cls(RedisStorage(uri, implementation="redispy", key_prefix=REDIS_KEY_PREFIX,
                                    **options), overrides)
        return cls(None, overrides)

    def limit_for(self, model: str) -> RateLimitItem:
        """The limit that applies to `model` (override, then `*`, then the size tier)."""
        item = self._items.get(model)
        if item is None:
            from limits import parse

            text = self.overrides.get(model) or self.overrides.get("*") or tier_for(model)
            item = self._items[model] = parse(text)
        return item

    async def hit(self, identity: str, model: str) -> None:
        """Count one request; raise RateLimitError (429 + Retry-After) when over the limit."""
        item = self.limit_for(model)
        if self.memory is not None:
            wait = self.memory.hit(item, identity, model)
            if wait is None:
                return
        else:
            try:
                if await self.limiter.hit(item, identity, model):
                    return
                stats = await self.limiter.get_window_stats(item, identity, model)
            except Exception as exc:  # an unreachable store must not take the API down
                log.warning("rate limiter store unavailable (REDIS_URL): %s", exc)
                return
            wait = stats.reset_time - time.time()
        retry_after = max(1, math.ceil(wait))
        raise RateLimitError(
            f"rate limit of {item} for model {model!r} exceeded; retry in {retry_after} s",
            retry_after=retry_after,
        )

    async def close(self) -> None:
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            with contextlib.suppress(Exception):
                await client.aclose()

