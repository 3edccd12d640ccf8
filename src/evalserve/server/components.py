"""The one place the server's lifespan builds its components, in order, and closes them in
reverse. Each gets what it needs as arguments and is published in the typed `Services`.

In start order:

0. tracing, when `build_app` made a tracer provider (`evalserve.tracing`): httpx is
   instrumented (upstream calls are client spans carrying `traceparent`); at exit, after
   every other component closed, httpx is uninstrumented and the provider flushed and shut
   down;
1. the engine, loading in the background (`GET /` and `/health` answer at once: 503
   `loading` until it is ready); closed last;
2. the response cache (`Services.response_cache`; none with `CACHE_TTL_SECONDS=0`);
3. the rate limiter (`Services.rate_limiter`);
4. the `METRICS_PORT` server (`Services.metrics_port`), when `build_app` installed telemetry;
5. the warm-up from `WARMUP_FILE` (`Services.warmup_done`);
6. the `MetricsService` shared by the `/metrics/*` routes and the jobs' metrics hook
   (`Services.metrics`);
7. the job service (`Services.jobs`), its runner given the item hooks (metrics, the tracked
   inputs, the `items_graded` counter) and the finish hook (MLflow runs of tracked jobs)
   before it starts, so jobs resumed at start-up get them too; and the tracer, when tracing
   is on.

At exit every lifespan field of `Services` is None again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from evalserve.jobs.extensions import ItemHook
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.hooks import MetricsHook
from evalserve.jobs.service import JobService
from evalserve.judge.factuality import build_metrics_service
from evalserve.metrics.service import MetricsService
from evalserve.server.cache import create_cache
from evalserve.server.ratelimit import RateLimiter
from evalserve.server.state import AppState, Services
from evalserve.server.telemetry import metrics_server
from evalserve.server.warmup import warmup
from evalserve.tracing import tracer_of
from evalserve.tracking.jobs import TrackedJobLogger, remember_inputs

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

__all__ = ["run_components"]

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def run_components(state: AppState,
                         tracer_provider: TracerProvider | None = None) -> AsyncIterator[Services]:
    """Start every component for `state` (see the module doc); close them in reverse at exit."""
    settings, services = state.settings, state.components
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(_clear, services)  # runs last, after every close
        if tracer_provider is not None:
            await stack.enter_async_context(_tracing(tracer_provider))
        await stack.enter_async_context(_engine(state))
        services.response_cache = create_cache(settings)
        if services.response_cache is not None:
            stack.push_async_callback(services.response_cache.close)
        services.rate_limiter = RateLimiter.from_settings(settings)
        stack.push_async_callback(services.rate_limiter.close)
        if services.telemetry is not None:
            services.metrics_port = await stack.enter_async_context(
                metrics_server(settings, services.telemetry))
        services.warmup_done = await stack.enter_async_context(
            warmup(settings, state.wait_engine))
        services.metrics = build_metrics_service(settings, state.wait_engine)
        services.jobs = _build_jobs(state, services.metrics, tracer_of(tracer_provider))
        await services.jobs.start()
        stack.push_async_callback(services.jobs.close)
        yield services


def _build_jobs(state: AppState, metrics: MetricsService, tracer: Tracer | None) -> JobService:
    """The job service on the app's engine (waiting for it to load), with its hooks."""
    settings = state.settings
    kit = JudgeKit.from_settings(settings)
    tracking = TrackedJobLogger(settings, state.engine, temperature=kit.temperature,
                                max_tokens=kit.max_tokens)
    item_hooks: list[ItemHook] = [MetricsHook(metrics), remember_inputs]
    if state.components.telemetry is not None:
        item_hooks.append(state.components.telemetry.count_graded)
    return JobService.from_settings(settings, state.engine, engine_provider=state.wait_engine,
                                    kit=kit, item_hooks=item_hooks, finish_hooks=[tracking],
                                    runner_options={"tracer": tracer})


@contextlib.asynccontextmanager
async def _tracing(provider: TracerProvider) -> AsyncIterator[None]:
    """httpx traced with `provider` until exit; then the provider flushed and shut down (in a
    thread: exporting may wait on the collector)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    # process-wide: it patches httpx's transports, so one traced app per process
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()
        await asyncio.to_thread(provider.shutdown)


@contextlib.asynccontextmanager
async def _engine(state: AppState) -> AsyncIterator[None]:
    loading = asyncio.create_task(_load_engine(state))
    try:
        yield
    finally:
        loading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loading
        await state.engine.close()


async def _load_engine(state: AppState) -> None:
    try:
        await state.engine.start()
        log.info("model %s loaded", state.engine.model_id)
    except Exception as exc:  # reported by /health and every route needing the engine
        log.exception("the engine failed to start")
        state.engine_error = exc
    finally:
        state.engine_ready.set()


def _clear(services: Services) -> None:
    """Every lifespan field back to None (telemetry belongs to the app, not the lifespan)."""
    for name in (f.name for f in dataclasses.fields(services) if f.name != "telemetry"):
        setattr(services, name, None)
