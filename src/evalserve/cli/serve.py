"""`evalserve serve`: run the HTTP service with uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from evalserve.cli.options import EngineOpt, ModelOpt
from evalserve.settings import load_settings

__all__ = ["serve"]


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (PORT)")] = None,
    engine: EngineOpt = None,
    model: ModelOpt = None,
) -> None:
    """Start the evaluation service (engine, job runner, OpenAI-compatible API)."""
    import uvicorn

    from evalserve.server.app import build_app

    settings = load_settings(host=host, port=port, engine=engine, model_name=model)
    logging.getLogger().setLevel(settings.log_level.upper())
    app = build_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=5)
