"""`build_app(settings)`: the FastAPI application and its lifespan.

The engine loads in the background so `GET /` and the health routes answer at once (503
`loading` until it is ready). Components (job runner, metrics port, warm-up) are async context
managers entered in order and closed in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI

from evalserve import __version__
from evalserve.engines.base import Engine
from evalserve.engines.registry import create_engine
from evalserve.jobs.hooks import metrics_hook_component
from evalserve.jobs.service import jobs_component
from evalserve.server import auth, cache, ratelimit, telemetry, warmup
from evalserve.server.errors import install_error_handlers
from evalserve.server.routes import evaluate as evaluate_routes
from evalserve.server.routes import health
from evalserve.server.routes import jobs as jobs_routes
from evalserve.server.routes import metrics as metrics_routes
from evalserve.server.routes import openai as openai_routes
from evalserve.server.routes import predict as predict_routes
from evalserve.server.routes import rubrics as rubrics_routes
from evalserve.server.routes import ui as ui_routes
from evalserve.server.state import AppState
from evalserve.settings import Settings
from evalserve.tracking.jobs import tracking_component

__all__ = ["build_app", "COMPONENTS"]

log = logging.getLogger(__name__)

Component = Callable[[AppState], contextlib.AbstractAsyncContextManager[Any]]

#: Started after the engine begins loading, closed in reverse order at shutdown. The metrics
#: and tracking hooks register before the job runner starts, so resumed jobs get them too.
COMPONENTS: list[Component] = [
    cache.response_cache,
    ratelimit.rate_limiter,
    telemetry.metrics_server,
    warmup.warmup,
    metrics_hook_component,
    tracking_component,
    jobs_component,
]

ROUTERS = [
    health.router,
    predict_routes.router,
    openai_routes.router,
    telemetry.router,
    evaluate_routes.router,
    jobs_routes.router,
    rubrics_routes.router,
    metrics_routes.router,
    ui_routes.router,
]


async def _load_engine(state: AppState) -> None:
    try:
        await state.engine.start()
        log.info("model %s loaded", state.engine.model_id)
    except Exception as exc:  # reported by /health and every route needing the engine
        log.exception("the engine failed to start")
        state.engine_error = exc
    finally:
        state.engine_ready.set()


def build_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The whole service for `settings`; pass `engine` to serve a ready-made one (tests)."""
    state = AppState(settings=settings, engine=engine or create_engine(settings))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(_load_engine(state))
        async with contextlib.AsyncExitStack() as stack:
            for component in COMPONENTS:
                await stack.enter_async_context(component(state))
            try:
                yield
            finally:
                loading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loading
        await state.engine.close()

    app = FastAPI(title="evalserve", version=__version__, lifespan=lifespan)
    app.state.evalserve = state
    install_error_handlers(app)
    auth.install_auth(app, settings.api_tokens)  # every route but OPEN_PATHS
    telemetry.install_telemetry(app, state)  # outermost: counts 401s too
    for router in ROUTERS:
        app.include_router(router)
    return app
