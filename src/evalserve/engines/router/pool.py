"""The endpoints of one routed model and the choice between them; one request's way through
its model's endpoints and then its fallbacks'.

A request goes to the least-loaded endpoint in rotation with a free slot (in-flight ÷ weight;
ties go to the one sent the fewest requests per weight, so the split follows the weights even
one request at a time). When every endpoint in rotation is at `max_concurrency` the request
waits for a slot; when none is in rotation (or each has failed this request) it moves on to
the model's fallbacks. When nothing in rotation could answer, the endpoints out of rotation
are tried too, once each (a probe may not have noticed one came back).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from evalserve.errors import EngineUnavailableError, EvalserveError, RateLimitError, UpstreamError

if TYPE_CHECKING:
    from collections.abc import Callable

    from evalserve.engines.router.endpoint import Endpoint

__all__ = ["Pool", "Attempt", "fails_over", "takes_out"]

log = logging.getLogger(__name__)


def fails_over(exc: BaseException) -> bool:
    """Whether a failed request is tried on another endpoint: connection errors, timeouts,
    5xx and malformed answers (`UpstreamError`), and 429 (that endpoint is busy). A 4xx that
    is the client's fault would fail anywhere: it is passed to the client."""
    return isinstance(exc, (UpstreamError, RateLimitError))


def takes_out(exc: BaseException) -> bool:
    """Whether the failure takes the endpoint out of rotation (not a 429: it is up, busy)."""
    return isinstance(exc, UpstreamError)


class Pool:
    """The endpoints of one routed model, its fallbacks, and the requests waiting for a slot."""

    def __init__(self, name: str, endpoints: list[Endpoint], fallbacks: list[str]) -> None:
        self.name = name
        self.endpoints = endpoints
        self.fallbacks = fallbacks
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def waiting(self) -> int:
        """Requests waiting for a free slot."""
        return len(self._waiters)

    @property
    def capacity(self) -> int:
        """Requests the endpoints take at once."""
        return sum(e.max_concurrency for e in self.endpoints)

    @property
    def in_flight(self) -> int:
        return sum(e.in_flight for e in self.endpoints)

    @property
    def healthy(self) -> int:
        """Endpoints in rotation."""
        return sum(e.healthy for e in self.endpoints)

    def pick(self, tried: set[int]) -> Endpoint | None:
        """The least-loaded endpoint in rotation with a free slot, not in `tried` (by id)."""
        best: Endpoint | None = None
        for endpoint in self.endpoints:
            if endpoint.available and id(endpoint) not in tried and (
                    best is None or endpoint.load < best.load):
                best = endpoint
        return best

    def pick_out_of_rotation(self, tried: set[int]) -> Endpoint | None:
        """The least-loaded endpoint out of rotation with a free slot, not in `tried`, its slot
        taken: the last resort when nothing in rotation could answer."""
        spare = [e for e in self.endpoints if not e.healthy and id(e) not in tried
                 and e.in_flight < e.max_concurrency]
        if not spare:
            return None
        endpoint = min(spare, key=lambda e: e.load)
        endpoint.in_flight += 1
        endpoint.sent += 1
        return endpoint

    def _candidates(self, tried: set[int]) -> bool:
        return any(e.healthy and id(e) not in tried for e in self.endpoints)

    async def acquire(self, tried: set[int]) -> Endpoint | None:
        """A slot at the least-loaded endpoint not in `tried`, waiting while every candidate is
        full; None once no endpoint in rotation is left untried."""
        while True:
            endpoint = self.pick(tried)
            if endpoint is not None:
                endpoint.in_flight += 1
                endpoint.sent += 1
                return endpoint
            if not self._candidates(tried):
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, endpoint: Endpoint) -> None:
        """Free the slot `acquire` took."""
        endpoint.in_flight -= 1
        if self._waiters:
            self.wake()

    def wake(self) -> None:
        """Let the waiting requests look again (a slot freed, an endpoint in or out)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Attempt:
    """One request's way through the endpoints of `chain` (its model, then the fallbacks,
    breadth first), each endpoint at most once."""

    def __init__(self, chain: list[Pool], clock: Callable[[], float],
                 on_out: Callable[[Endpoint], None]) -> None:
        self.model = chain[0].name
        self.chain = chain
        self.clock = clock
        self.on_out = on_out
        self.tried: set[int] = set()
        self.errors: list[tuple[Endpoint, EvalserveError]] = []
        self._at = 0

    async def next(self) -> Endpoint | None:
        """The next endpoint to send to (its slot taken), or None when none is left: those in
        rotation first, then, as a last resort, those out of it (a request fails only when
        every endpoint of its chain failed it)."""
        while self._at < len(self.chain):
            endpoint = await self.chain[self._at].acquire(self.tried)
            if endpoint is not None:
                self.tried.add(id(endpoint))
                return endpoint
            self._at += 1
        for pool in self.chain:
            endpoint = pool.pick_out_of_rotation(self.tried)
            if endpoint is not None:
                self.tried.add(id(endpoint))
                return endpoint
        return None

    def failed(self, endpoint: Endpoint, exc: EvalserveError) -> None:
        """Remember the failure; take the endpoint out of rotation when `takes_out`."""
        self.errors.append((endpoint, exc))
        if takes_out(exc) and endpoint.take_out(exc.message, self.clock()):
            log.warning("upstream %s (model %s) out of rotation: %s", endpoint.url,
                        endpoint.model, exc.message)
            self.on_out(endpoint)

    def error(self) -> EvalserveError:
        """What the client gets when no endpoint could answer: the last failure, its status
        kept (502, 504, 429), saying which endpoints were tried; 503 when none was."""
        models = ", ".join(repr(p.name) for p in self.chain)
        if not self.errors:
            return EngineUnavailableError(
                f"model {self.model!r}: no endpoint is in rotation (models tried: {models}); "
                "GET /health lists the endpoints and their last errors; retry shortly")
        endpoint, last = self.errors[-1]
        tried = ", ".join(f"{e.model} at {e.url}" for e, _ in self.errors)
        message = (f"model {self.model!r}: every endpoint failed ({tried}); last: "
                   f"{last.message}")
        if isinstance(last, RateLimitError):
            return RateLimitError(message, retry_after=last.retry_after)
        return type(last)(message)
