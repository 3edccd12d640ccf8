"""Rate limits over moving windows (`limits`), in memory or in Redis, each hit with a cost.

What is counted (the routes charge through `server/costs.py`):

- prompts on `/v1`, per caller and model, against the model's
  tier: seed 001's table by the model size read from the model id (up to 7B 100/minute, 13B
  50, 30B/40B 40, 70B and larger 20; a smaller or unknown size takes the 7B tier), or
  `RATE_LIMITS="my-model=30/minute;other=5/second;*=1000/minute"` (`*`: every other model).
  A model routed by `UPSTREAMS_FILE` takes, in order: its `RATE_LIMITS` entry, its
  `rate_limit` in the file, `*`, then the tier of its name's size, else of the largest
  `upstream_model` of its endpoints (`judge-large` over `Llama-2-70b-chat-hf`: 20/minute).
  A list of 200 prompts is 200 hits, and `n` multiplies;
- prompts sent to `/predict` and `/generate` per caller (`PREDICT_RATE_LIMIT`: a seed 003
  grader may push every question at once, more than a model tier allows);
- items submitted to `/evaluate` per caller (`ITEM_RATE_LIMIT`), texts sent to the metrics
  routes per caller (`TEXT_RATE_LIMIT`);
- prompt + completion tokens on `/v1` per caller and model (`TOKENS_PER_MINUTE`, like
  LiteLLM's tpm): spent after the response, and the next request is refused while the
  minute is over budget.

The caller is `Caller.identity`: the key id, else the client address. With `REDIS_URL` the
windows live in Redis (moving windows; tokens in a one-minute counter), so the limits hold
across replicas; if the store cannot be reached the request is let through (and a warning
logged).

In memory the windows are (time, cost) entries in this module, at most
`RATE_LIMIT_MAX_BUCKETS` of them, least recently used dropped first: `limits`' memory storages
hop to a thread (asyncio variant) or start a timer thread (sync variant) on hits, which costs
milliseconds per request on a busy machine.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from evalserve.errors import ConfigurationError, PayloadTooLargeError, RateLimitError

if TYPE_CHECKING:
    from pathlib import Path

    from limits import RateLimitItem

    from evalserve.settings import Settings

__all__ = ["RateLimiter", "MemoryWindows", "parse_rate_limits", "tier_for", "routed_limits",
           "REDIS_KEY_PREFIX"]

log = logging.getLogger(__name__)

REDIS_KEY_PREFIX = "vllm:ratelimit"

#: (largest size in billions of parameters, limit) in ascending order; seed 001's table.
_TIERS = ((7.0, "100/minute"), (13.0, "50/minute"), (40.0, "40/minute"))
_LARGEST_TIER = "20/minute"
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z])", re.IGNORECASE)
_MINUTE = 60


def _size(model_id: str) -> float | None:
    """Billions of parameters named in a model id (`Llama-2-13b` -> 13), or None."""
    sizes = [float(m) for m in _SIZE.findall(model_id.replace("_", "-"))]
    return max(sizes) if sizes else None


def tier_for(model_id: str) -> str:
    """Seed 001's limit for a model id such as `meta-llama/Llama-2-13b-chat-hf` (50/minute)."""
    size = _size(model_id)
    if size is None:
        return _TIERS[0][1]
    for largest, limit in _TIERS:
        if size <= largest:
            return limit
    return _LARGEST_TIER


def _parse(text: str, name: str) -> RateLimitItem:
    from limits import parse

    try:
        return parse(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"{name}: {text.strip()!r} is not a rate such as `30/minute` or `5/second`"
        ) from None


def parse_rate_limits(text: str | None) -> dict[str, str]:
    """`model=limit;model2=limit2` into a dict, each limit checked (`30/minute`, `5/second`)."""
    overrides: dict[str, str] = {}
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        model, sep, limit = part.rpartition("=")
        if not sep or not model.strip():
            raise ConfigurationError(
                f"RATE_LIMITS entry {part.strip()!r} must look like `model-id=30/minute`")
        _parse(limit, "RATE_LIMITS")
        overrides[model.strip()] = limit.strip()
    return overrides


def routed_limits(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """For the models routed by the `UPSTREAMS_FILE` at `path`: the `rate_limit`s the file
    sets, and for each model the id whose size gives its tier (its name if that names a
    size, else its largest `upstream_model`)."""
    from evalserve.engines.router import load_upstreams

    explicit: dict[str, str] = {}
    tier_ids: dict[str, str] = {}
    for model in load_upstreams(path).models:
        if model.rate_limit:
            explicit[model.name] = model.rate_limit
        if _size(model.name) is None:
            tier_ids[model.name] = max(model.upstream_models(),
                                       key=lambda m: _size(m) or 0.0)
    return explicit, tier_ids


class _Window:
    """The (time, cost) entries still inside one window, oldest first, and their sum."""

    __slots__ = ("entries", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.total = 0

    def expire(self, before: float) -> None:
        while self.entries and self.entries[0][0] <= before:
            self.total -= self.entries.popleft()[1]

    def add(self, now: float, cost: int) -> None:
        self.entries.append((now, cost))
        self.total += cost

    def wait(self, allowed: int, span: float, now: float) -> float:
        """Seconds until at most `allowed` is left in the window."""
        left = self.total
        for at, cost in self.entries:
            left -= cost
            if left <= allowed:
                return at + span - now
        return 0.0


class MemoryWindows:
    """Moving windows in this process, at most `max_buckets` of them (LRU)."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self.max_buckets = max_buckets
        self._windows: OrderedDict[tuple[str, ...], _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def _window(self, key: tuple[str, ...], span: float, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
            while len(self._windows) > self.max_buckets:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
        window.expire(now - span)
        return window

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> float | None:
        """Record `cost` hits and return None, or return the seconds until they fit."""
        now = time.monotonic()
        span = item.get_expiry()
        window = self._window((str(item), *identifiers), span, now)
        if window.total + cost > item.amount:
            return window.wait(item.amount - cost, span, now)
        window.add(now, cost)
        return None

    def record(self, key: tuple[str, ...], span: float, cost: int) -> None:
        """Add `cost` to a window whatever its total (spent tokens)."""
        now = time.monotonic()
        self._window(key, span, now).add(now, cost)

    def over(self, key: tuple[str, ...], span: float, budget: int) -> float | None:
        """None while the window holds less than `budget`, else the seconds until it does."""
        now = time.monotonic()
        window = self._window(key, span, now)
        return window.wait(budget - 1, span, now) if window.total >= budget else None


class RateLimiter:
    """Moving-window limiter keyed by caller identity (and model, for prompts and tokens)."""

    def __init__(self, storage: Any = None, overrides: dict[str, str] | None = None, *,
                 item_limit: str = "100000/hour", text_limit: str = "100000/hour",
                 predict_limit: str = "100000/hour",
                 tokens_per_minute: int = 0, max_buckets: int = 100_000,
                 routed: dict[str, str] | None = None,
                 tier_ids: dict[str, str] | None = None) -> None:
        """`storage`: a `limits.aio` storage (Redis), or None for windows in this process.
        `routed` and `tier_ids`: the routed models' limits and tier ids (`routed_limits`)."""
        self.storage = storage
        self.memory = MemoryWindows(max_buckets) if storage is None else None
        self.limiter: Any = None
        if storage is not None:
            from limits.aio.strategies import MovingWindowRateLimiter

            self.limiter = MovingWindowRateLimiter(storage)
        self.overrides = overrides or {}
        self.routed = routed or {}
        self.tier_ids = tier_ids or {}
        self.item_limit = _parse(item_limit, "ITEM_RATE_LIMIT")
        self.text_limit = _parse(text_limit, "TEXT_RATE_LIMIT")
        self.predict_limit = _parse(predict_limit, "PREDICT_RATE_LIMIT")
        self.tokens_per_minute = tokens_per_minute
        self._items: dict[str, RateLimitItem] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        options: dict[str, Any] = {
            "item_limit": settings.item_rate_limit, "text_limit": settings.text_rate_limit,
            "predict_limit": settings.predict_rate_limit,
            "tokens_per_minute": settings.tokens_per_minute,
            "max_buckets": settings.rate_limit_max_buckets}
        if settings.upstreams_file is not None:
            options["routed"], options["tier_ids"] = routed_limits(settings.upstreams_file)
        overrides = parse_rate_limits(settings.rate_limits)
        if settings.redis_url:
            from limits.aio.storage import RedisStorage

            uri = "async+" + settings.redis_url
            redis: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
            if settings.redis_password:
                redis["password"] = settings.redis_password
            return cls(RedisStorage(uri, implementation="redispy", key_prefix=REDIS_KEY_PREFIX,
                                    **redis), overrides, **options)
        return cls(None, overrides, **options)

    def limit_for(self, model: str) -> RateLimitItem:
        """The limit that applies to `model`: its override, its routed `rate_limit`, `*`,
        then the size tier (of its `tier_ids` entry for a routed model)."""
        item = self._items.get(model)
        if item is None:
            text = (self.overrides.get(model) or self.routed.get(model)
                    or self.overrides.get("*") or tier_for(self.tier_ids.get(model, model)))
            item = self._items[model] = _parse(text, "RATE_LIMITS")
        return item

    async def hit(self, identity: str, model: str, cost: int = 1) -> None:
        """Count `cost` prompts for `model`; RateLimitError (429 + Retry-After) when over."""
        await self._charge(self.limit_for(model), (identity, model), cost, "prompts",
                           f"for model {model!r}", "RATE_LIMITS")

    async def hit_items(self, identity: str, count: int) -> None:
        """Count `count` items submitted for evaluation (`ITEM_RATE_LIMIT`)."""
        await self._charge(self.item_limit, (identity, "items"), count, "items",
                           "for submitted items", "ITEM_RATE_LIMIT")

    async def hit_predict(self, identity: str, count: int) -> None:
        """Count `count` prompts sent to `/predict` or `/generate` (`PREDICT_RATE_LIMIT`)."""
        await self._charge(self.predict_limit, (identity, "predict"), count, "prompts",
                           "for /predict and /generate", "PREDICT_RATE_LIMIT")

    async def hit_texts(self, identity: str, count: int) -> None:
        """Count `count` texts sent to the metrics routes (`TEXT_RATE_LIMIT`)."""
        await self._charge(self.text_limit, (identity, "texts"), count, "texts",
                           "for metric texts", "TEXT_RATE_LIMIT")

    async def _charge(self, item: RateLimitItem, ids: tuple[str, ...], cost: int, unit: str,
                      scope: str, setting: str) -> None:
        if cost <= 0:
            return
        if cost > item.amount:  # could never pass: waiting does not help, splitting does
            raise PayloadTooLargeError(
                f"this request counts {cost} {unit}, more than the rate limit of {item} "
                f"{scope} ({setting}) allows at once: send at most {item.amount} per request")
        if self.memory is not None:
            wait = self.memory.hit(item, *ids, cost=cost)
            if wait is None:
                return
        else:
            try:
                if await self.limiter.hit(item, *ids, cost=cost):
                    return
                stats = await self.limiter.get_window_stats(item, *ids)
            except Exception as exc:  # an unreachable store must not take the API down
                log.warning("rate limiter store unavailable (REDIS_URL): %s", exc)
                return
            wait = stats.reset_time - time.time()
        retry_after = max(1, math.ceil(wait))
        raise RateLimitError(
            f"rate limit of {item} {scope} exceeded ({cost} {unit} asked); retry in "
            f"{retry_after} s", retry_after=retry_after)

    async def check_tokens(self, identity: str, model: str) -> None:
        """Refuse (429) while this caller's tokens for `model` in the minute are over
        `TOKENS_PER_MINUTE`."""
        budget = self.tokens_per_minute
        if not budget:
            return
        key = ("tpm", identity, model)
        if self.memory is not None:
            wait = self.memory.over(key, _MINUTE, budget)
            if wait is None:
                return
        else:
            try:
                redis_key = "/".join(key)
                if await self.storage.get(redis_key) < budget:
                    return
                wait = await self.storage.get_expiry(redis_key) - time.time()
            except Exception as exc:
                log.warning("rate limiter store unavailable (REDIS_URL): %s", exc)
                return
        retry_after = max(1, math.ceil(wait))
        raise RateLimitError(
            f"token limit of {budget} per minute for model {model!r} exceeded "
            f"(TOKENS_PER_MINUTE); retry in {retry_after} s", retry_after=retry_after)

    async def spend_tokens(self, identity: str, model: str, tokens: int) -> None:
        """Count the prompt + completion tokens of a finished response."""
        if not self.tokens_per_minute or tokens <= 0:
            return
        key = ("tpm", identity, model)
        if self.memory is not None:
            self.memory.record(key, _MINUTE, tokens)
            return
        try:
            await self.storage.incr("/".join(key), _MINUTE, amount=tokens)
        except Exception as exc:
            log.warning("rate limiter store unavailable (REDIS_URL): %s", exc)

    async def close(self) -> None:
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            with contextlib.suppress(Exception):
                await client.aclose()
