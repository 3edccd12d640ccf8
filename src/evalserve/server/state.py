"""What the running server holds: settings, the engine and the services built on it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from evalserve.errors import EngineUnavailableError
from evalserve.redact import redact_text

if TYPE_CHECKING:
    from evalserve.engines.base import Engine
    from evalserve.jobs.service import JobService
    from evalserve.metrics.service import MetricsService
    from evalserve.server.cache import ResponseCache
    from evalserve.server.ratelimit import RateLimiter
    from evalserve.server.telemetry import Telemetry
    from evalserve.settings import Settings

__all__ = ["AppState", "Services", "require"]

T = TypeVar("T")


@dataclass
class Services:
    """What the app's components provide, set by `build_app` (telemetry) and by the lifespan
    (`server/components.py`, the rest); None while not started or switched off."""

    #: The app's Prometheus metrics (built with the app, before the lifespan).
    telemetry: Telemetry | None = None
    #: Cache of deterministic OpenAI responses (None with `CACHE_TTL_SECONDS=0`).
    response_cache: ResponseCache | None = None
    #: Per-key, per-model limits of the OpenAI routes.
    rate_limiter: RateLimiter | None = None
    #: The port the `METRICS_PORT` server listens on (None when it is off).
    metrics_port: int | None = None
    #: Set once the `WARMUP_FILE` warm-up is over (None when there is none).
    warmup_done: asyncio.Event | None = None
    #: `/metrics/*` routes and the jobs' metrics hook share it.
    metrics: MetricsService | None = None
    #: Evaluation jobs (`/evaluate`, `/jobs`, `/stream`).
    jobs: JobService | None = None

    @property
    def active_jobs(self) -> int:
        """Queued + running jobs (0 before the job service runs)."""
        return self.jobs.active_jobs() if self.jobs is not None else 0


def require(service: T | None, name: str) -> T:
    """`service`, or a 503 saying `name` is not running yet."""
    if service is None:
        raise EngineUnavailableError(f"the {name} is not running; retry in a few seconds")
    return service


@dataclass
class AppState:
    """One per app: settings, the engine, and the typed services its components provide."""

    settings: Settings
    engine: Engine
    started_at: float = field(default_factory=time.time)
    engine_ready: asyncio.Event = field(default_factory=asyncio.Event)
    engine_error: BaseException | None = None
    components: Services = field(default_factory=Services)

    @property
    def loaded(self) -> bool:
        return self.engine_ready.is_set() and self.engine_error is None

    def ready_engine(self) -> Engine:
        """The engine, or a 503 error while it is still loading (or failed to load)."""
        if self.engine_error is not None:
            raise EngineUnavailableError(
                f"the model failed to load: {redact_text(str(self.engine_error))}")
        if not self.engine_ready.is_set():
            raise EngineUnavailableError("the model is still loading; retry in a few seconds")
        return self.engine

    async def wait_engine(self) -> Engine:
        """Wait until the engine is loaded (raises if loading failed)."""
        await self.engine_ready.wait()
        return self.ready_engine()
