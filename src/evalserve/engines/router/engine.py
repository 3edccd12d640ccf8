"""`RouterEngine`: one engine over many routed models, each served by OpenAI-compatible
endpoints (vLLM replicas, llama.cpp's server, another evalserve), with failover.

A request is routed by `GenerationRequest.model` (None: the default model) to the least-loaded
endpoint in rotation (`pool.py`). A connection error, timeout, 5xx or malformed answer takes
that endpoint out of rotation and the request is sent to another endpoint, then to the model's
fallbacks; a 429 is tried elsewhere without taking the endpoint out; a client error (other 4xx)
is passed on, not retried. When no endpoint in rotation is left, those out of rotation are
tried as a last resort, and one that answers is back in rotation. A stream is failed over only
until its first token: once text reached the client it cannot be taken back, so a stream that
breaks later ends with the error.
Each endpoint is an `OpenAIEngine` with its own retries off, so the router decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalserve.engines.base import (
    CompletionOutput,
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    StreamDelta,
)
from evalserve.engines.router.config import load_upstreams
from evalserve.engines.router.endpoint import Endpoint, EndpointStatus, ProbePolicy
from evalserve.engines.router.pool import Attempt, Pool, fails_over
from evalserve.engines.router.prober import Prober
from evalserve.errors import ConfigurationError, EvalserveError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from evalserve.engines.openai import OpenAIEngine
    from evalserve.engines.router.config import EndpointConfig, UpstreamsConfig
    from evalserve.settings import Settings

__all__ = ["RouterEngine", "RouterHealth", "EngineFactory"]

#: Builds the engine of one endpoint from its config and the default timeout.
EngineFactory = Callable[["EndpointConfig", str, float], "OpenAIEngine"]


def openai_engine(config: EndpointConfig, model: str, timeout: float) -> OpenAIEngine:
    """The `OpenAIEngine` of one endpoint, its retries off (the router retries elsewhere)."""
    from evalserve.engines.openai import OpenAIEngine

    return OpenAIEngine(config.url, api_key=config.api_key,
                        model=config.upstream_model or model,
                        timeout=config.timeout or timeout, retries=0,
                        capacity=config.max_concurrency, routed=True)


@dataclass
class RouterHealth(EngineHealth):
    """`EngineHealth` plus every endpoint's state (shown under `upstreams` in `/health`)."""

    endpoints: list[EndpointStatus] = field(default_factory=list)


class RouterEngine(Engine):
    """Routes each request to an endpoint of its model (see the module doc)."""

    supports_logprobs = True
    supports_constraints = True

    def __init__(self, config: UpstreamsConfig, *, timeout: float = 120.0,
                 clock: Callable[[], float] = time.monotonic,
                 engine_factory: EngineFactory = openai_engine) -> None:
        policy = ProbePolicy(config.health_check_interval, config.probe_backoff,
                             config.probe_backoff_max, config.probe_timeout)
        self.config = config
        self.clock = clock
        self.pools = {m.name: Pool(m.name, [
            Endpoint(m.name, e, engine_factory(e, m.name, timeout), policy)
            for e in m.endpoints], list(m.fallbacks)) for m in config.models}
        self.endpoints = [e for pool in self.pools.values() for e in pool.endpoints]
        self._default = config.default
        self._chains = {name: self._chain(name) for name in self.pools}
        self.capacity = self.pools[self._default].capacity
        self.prober = Prober(self.endpoints, clock, self._changed)
        self._probing: asyncio.Task[None] | None = None
        self._active: dict[str, Endpoint] = {}
        self._live: set[str] = set()
        self._aborted: set[str] = set()
        self.loaded_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RouterEngine:
        if settings.upstreams_file is None:
            raise ConfigurationError("the router needs UPSTREAMS_FILE (a YAML list of models "
                                     "and their endpoints; see docs/router.md)")
        return cls(load_upstreams(settings.upstreams_file), timeout=settings.upstream_timeout)

    def _chain(self, name: str) -> list[Pool]:
        """The pools a request for `name` may use: its own, then its fallbacks breadth first."""
        order, at = [name], 0
        while at < len(order):
            order += [f for f in self.pools[order[at]].fallbacks if f not in order]
            at += 1
        return [self.pools[n] for n in order]

    def _changed(self, endpoint: Endpoint) -> None:
        """An endpoint went in or out: waiting requests look again, the prober reschedules."""
        self.pools[endpoint.model].wake()
        self.prober.wake()

    def _succeeded(self, endpoint: Endpoint) -> None:
        if endpoint.succeeded(self.clock()):
            self._changed(endpoint)

    @property
    def model_id(self) -> str:
        """The default routed model (`default_model`, else the first)."""
        return self._default

    @property
    def queue_depth(self) -> int:
        """Requests in flight at the endpoints plus those waiting for a slot."""
        return sum(p.in_flight + p.waiting for p in self.pools.values())

    # --- lifecycle ---
    async def start(self) -> None:
        """Check every endpoint once (those not answering start out of rotation), then keep
        checking in the background."""
        await self.prober.check_due()
        self._probing = asyncio.create_task(self.prober.run(), name="router-health-checks")
        self.loaded_at = time.time()

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing
            self._probing = None
        await asyncio.gather(*(e.engine.close() for e in self.endpoints))

    async def health(self) -> RouterHealth:
        """Loaded while the default model (or a fallback) has an endpoint in rotation."""
        chain = self._chains[self._default]
        detail = "; ".join(f"{p.name}: {p.healthy}/{len(p.endpoints)} endpoints in rotation"
                           for p in self.pools.values())
        return RouterHealth(loaded=self.loaded_at is not None and any(p.healthy for p in chain),
                            device="router", gpu_available=False, detail=detail,
                            endpoints=[e.status() for e in self.endpoints])

    async def models(self) -> list[ModelInfo]:
        """Every routed model, the default first."""
        names = [self._default, *(n for n in self.pools if n != self._default)]
        return [ModelInfo(id=n, owned_by="evalserve-router", loaded_at=self.loaded_at)
                for n in names]

    def _attempt(self, request: GenerationRequest) -> Attempt:
        name = request.model or self._default
        chain = self._chains.get(name)
        if chain is None:
            raise NotFoundError(f"model {name!r} is not routed here; routed models: "
                                f"{', '.join(self.pools)} (UPSTREAMS_FILE)",
                                code="model_not_found")
        return Attempt(chain, self.clock, self._changed)

    # --- generation ---
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        request.validate()
        attempt = self._attempt(request)
        rid = request.request_id
        self._live.add(rid)
        try:
            while (endpoint := await attempt.next()) is not None:
                self._active[rid] = endpoint
                try:
                    if rid in self._aborted:  # while it waited for a slot
                        break
                    result = await endpoint.engine.generate(endpoint.routed(request))
                    self._succeeded(endpoint)
                    return result
                except EvalserveError as exc:
                    if not fails_over(exc):
                        raise
                    attempt.failed(endpoint, exc)
                finally:
                    self._active.pop(rid, None)
                    self.pools[endpoint.model].release(endpoint)
            if rid in self._aborted:
                return GenerationResult(rid, [CompletionOutput("", "abort", 0, index=i)
                                              for i in range(request.n)], 0)
            raise attempt.error()
        finally:
            self._live.discard(rid)
            self._aborted.discard(rid)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        if request.n != 1:
            raise InvalidInputError("streaming takes n=1")
        request.validate()
        attempt = self._attempt(request)
        rid = request.request_id
        self._live.add(rid)
        try:
            while (endpoint := await attempt.next()) is not None:
                self._active[rid] = endpoint
                started = False
                try:
                    if rid in self._aborted:  # while it waited for a slot
                        break
                    async with contextlib.aclosing(
                            endpoint.engine.stream(endpoint.routed(request))) as deltas:
                        async for delta in deltas:
                            if not started:
                                started = True
                                self._succeeded(endpoint)
                            yield delta
                    return
                except EvalserveError as exc:
                    if not fails_over(exc):
                        raise
                    attempt.failed(endpoint, exc)
                    if started:  # text already reached the client: not retried
                        raise
                finally:
                    self._active.pop(rid, None)
                    self.pools[endpoint.model].release(endpoint)
            if rid in self._aborted:
                yield StreamDelta("", "abort", prompt_tokens=0, completion_tokens=0)
                return
            raise attempt.error()
        finally:
            self._live.discard(rid)
            self._aborted.discard(rid)

    async def abort(self, request_id: str) -> None:
        """Stop the request at its endpoint; it is not sent anywhere else."""
        if request_id not in self._live:
            return
        self._aborted.add(request_id)
        endpoint = self._active.get(request_id)
        if endpoint is not None:
            await endpoint.engine.abort(request_id)
