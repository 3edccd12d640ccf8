"""`build_app(settings)`: the FastAPI application and its lifespan.

The lifespan runs `server/components.py`: the engine loads in the background so `GET /` and
the health routes answer at once (503 `loading` until it is ready), then the other
components (cache, rate limiter, metrics port, warm-up, metrics service, job runner) start in
order and close in reverse.

With `OTEL_EXPORTER_OTLP_ENDPOINT` set (`evalserve.tracing`), every request is a server span
(FastAPI instrumentation; the health probes and the Prometheus scrape are left out) and the
lifespan instruments httpx and hands the tracer to the job runner (`docs/observability.md`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI

from evalserve import __version__
from evalserve.engines.base import Engine
from evalserve.engines.registry import create_engine
from evalserve.server import auth, telemetry
from evalserve.server.body_limit import install_body_limit
from evalserve.server.components import run_components
from evalserve.server.errors import install_error_handlers
from evalserve.server.routes import evaluate as evaluate_routes
from evalserve.server.routes import health
from evalserve.server.routes import jobs as jobs_routes
from evalserve.server.routes import metrics as metrics_routes
from evalserve.server.routes import openai as openai_routes
from evalserve.server.routes import predict as predict_routes
from evalserve.server.routes import prometheus as prometheus_routes
from evalserve.server.routes import rubrics as rubrics_routes
from evalserve.server.routes import ui as ui_routes
from evalserve.server.state import AppState
from evalserve.settings import Settings
from evalserve.tracing import setup_tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["build_app"]

ROUTERS = [
    health.router,
    predict_routes.router,
    openai_routes.router,
    prometheus_routes.router,
    evaluate_routes.router,
    jobs_routes.router,
    rubrics_routes.router,
    metrics_routes.router,
    ui_routes.router,
]

#: Requests not traced: liveness/readiness probes and Prometheus scrapes (regexes on the URL).
UNTRACED_URLS = "/health$,/healthz$,/metrics$"


def build_app(settings: Settings, engine: Engine | None = None, *,
              span_exporter: SpanExporter | None = None) -> FastAPI:
    """The whole service for `settings`; pass `engine` to serve a ready-made one (tests), and
    `span_exporter` to trace into it (tests, embedding) instead of `OTEL_EXPORTER_OTLP_ENDPOINT`.
    """
    state = AppState(settings=settings, engine=engine or create_engine(settings))
    # both built with the app, not in the lifespan: their middleware must be added before
    # start-up (the lifespan shuts the tracer provider down)
    tracer_provider = setup_tracing(settings, exporter=span_exporter)
    prometheus = telemetry.Telemetry(state.engine, loaded=lambda: state.loaded,
                                     active_jobs=lambda: state.components.active_jobs,
                                     replica=settings.replica_id)
    state.components.telemetry = prometheus

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with run_components(state, tracer_provider):
            yield

    app = FastAPI(title="evalserve", version=__version__, lifespan=lifespan)
    app.state.evalserve = state
    install_error_handlers(app)
    auth.install_auth(app, settings.api_tokens, settings.admin_tokens)  # all but OPEN_PATHS
    install_body_limit(app, settings.max_request_bytes)  # before auth: 413 without reading
    telemetry.install_telemetry(app, prometheus)  # outermost: counts 401s too
    for router in ROUTERS:
        app.include_router(router)
    if tracer_provider is not None:
        _trace_requests(app, tracer_provider)
    return app


def _trace_requests(app: FastAPI, tracer_provider: TracerProvider) -> None:
    """One server span per request, outside every middleware (401s and 413s are traced too),
    child of the caller's `traceparent` when it sends one."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # the environment's list, when given, replaces ours (as the instrumentation documents)
    from_env = {"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"} & set(os.environ)
    excluded = None if from_env else UNTRACED_URLS
    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider,
                                       excluded_urls=excluded, exclude_spans=["receive", "send"])
