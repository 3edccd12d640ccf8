"""One endpoint of a routed model: its `OpenAIEngine`, its weight and load, and its health.

State only; the choice between endpoints is `pool.py`, the health checks `prober.py`. Times are
the router's clock (monotonic seconds), passed in so tests can use a fake one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalserve.engines.router.config import safe_url

if TYPE_CHECKING:
    from evalserve.engines.base import GenerationRequest
    from evalserve.engines.openai import OpenAIEngine
    from evalserve.engines.router.config import EndpointConfig

__all__ = ["Endpoint", "EndpointStatus", "ProbePolicy"]


@dataclass(frozen=True)
class ProbePolicy:
    """When endpoints are checked: every `interval` s in rotation; out of rotation after
    `backoff` s, doubled after each failed probe up to `backoff_max`."""

    interval: float = 10.0
    backoff: float = 0.5
    backoff_max: float = 30.0
    timeout: float = 3.0

    def delay(self, failures: int) -> float:
        """Seconds until the next probe of an endpoint whose last `failures` probes failed."""
        return min(self.backoff * 2 ** min(failures, 32), self.backoff_max)


@dataclass
class EndpointStatus:
    """What `/health` shows of one endpoint."""

    model: str
    url: str
    upstream_model: str
    healthy: bool
    in_flight: int
    weight: float
    max_concurrency: int
    requests: int
    last_error: str | None


class Endpoint:
    """An OpenAI-compatible server answering for one routed model."""

    def __init__(self, model: str, config: EndpointConfig, engine: OpenAIEngine,
                 policy: ProbePolicy) -> None:
        self.model = model
        self.url = safe_url(config.url)
        self.upstream_model = config.upstream_model or model
        self.weight = config.weight
        self.max_concurrency = config.max_concurrency
        self.engine = engine
        self.policy = policy
        self.in_flight = 0
        self.sent = 0
        """Requests sent here so far (the tie-break of equal loads, so weights hold even one
        request at a time)."""
        self.healthy = True
        self.failures = 0
        """Failed probes in a row since the endpoint was taken out."""
        self.next_check = 0.0
        self.checking = False
        self.last_error: str | None = None
        self.last_ok: float | None = None
        """When a request last succeeded here (a recent success stands in for a check)."""

    def __repr__(self) -> str:
        return f"<Endpoint {self.model} {self.url} {'in' if self.healthy else 'out'}>"

    @property
    def available(self) -> bool:
        """In rotation with a free slot."""
        return self.healthy and self.in_flight < self.max_concurrency

    @property
    def load(self) -> tuple[float, float]:
        """What the least-loaded choice minimises: in-flight ÷ weight, then sent ÷ weight."""
        return self.in_flight / self.weight, self.sent / self.weight

    def routed(self, request: GenerationRequest) -> GenerationRequest:
        """`request` as this endpoint knows it: its `upstream_model`, same request id."""
        return dataclasses.replace(request, model=self.upstream_model)

    def succeeded(self, now: float) -> bool:
        """A request answered: proof of life. True if that brought it back in rotation."""
        self.last_ok = now
        return not self.healthy and self.restore(now)

    def recently_ok(self, now: float) -> bool:
        """Answered a request within the check interval: no need to check it now."""
        return self.last_ok is not None and now - self.last_ok < self.policy.interval

    def take_out(self, reason: str, now: float) -> bool:
        """Out of rotation until a probe succeeds; True if it was in rotation."""
        self.last_error = reason
        if not self.healthy:
            return False
        self.healthy = False
        self.failures = 0
        self.next_check = now + self.policy.delay(0)
        return True

    def probe_failed(self, reason: str, now: float) -> None:
        """A health check failed: out of rotation (if it was in), next probe later."""
        if not self.take_out(reason, now):
            self.failures += 1
            self.next_check = now + self.policy.delay(self.failures)

    def restore(self, now: float) -> bool:
        """A health check passed: in rotation; True if it was out."""
        was_out = not self.healthy
        self.healthy = True
        self.failures = 0
        self.last_error = None
        self.next_check = now + self.policy.interval
        return was_out

    def status(self) -> EndpointStatus:
        return EndpointStatus(self.model, self.url, self.upstream_model, self.healthy,
                              self.in_flight, self.weight, self.max_concurrency, self.sent,
                              self.last_error)
