"""`build_app(settings)`: the FastAPI application and its lifespan.

The lifespan runs `server/components.py`: the engine loads in the background so `GET /` and
the health routes answer at once (503 `loading` until it is ready), then the other
components (cache, rate limiter, metrics port, warm-up, metrics service, job runner) start in
order and close in reverse.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

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


def build_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The whole service for `settings`; pass `engine` to serve a ready-made one (tests)."""
    state = AppState(settings=settings, engine=engine or create_engine(settings))
    # built with the app, not in the lifespan: its middleware must be added before start-up
    prometheus = telemetry.Telemetry(state.engine, loaded=lambda: state.loaded,
                                     active_jobs=lambda: state.components.active_jobs)
    state.components.telemetry = prometheus

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with run_components(state):
            yield

    app = FastAPI(title="evalserve", version=__version__, lifespan=lifespan)
    app.state.evalserve = state
    install_error_handlers(app)
    auth.install_auth(app, settings.api_tokens, settings.admin_tokens)  # all but OPEN_PATHS
    install_body_limit(app, settings.max_request_bytes)  # before auth: 413 without reading
    telemetry.install_telemetry(app, prometheus)  # outermost: counts 401s too
    for router in ROUTERS:
        app.include_router(router)
    return app
