"""Helper for the gateway unit tests: a real app on a ScriptedEngine, lifespan running, and an
httpx client over ASGITransport."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from evalserve.engines.base import Engine
from evalserve.server.app import build_app
from evalserve.settings import Settings, load_settings
from tests.fakes import ScriptedEngine


def make_settings(settings: Settings, **overrides: Any) -> Settings:
    """`settings` (the conftest fixture) with some fields changed."""
    return load_settings(**{**settings.model_dump(), "metrics_port": 0, **overrides})


@contextlib.asynccontextmanager
async def running_app(settings: Settings, engine: Engine | None = None,
                      token: str | None = None) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """(app, client) with the lifespan entered and the engine loaded."""
    app = build_app(settings, engine=engine or ScriptedEngine(lambda r: "hello world"))
    async with app.router.lifespan_context(app):
        await app.state.evalserve.wait_engine()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test", headers=headers) as client:
            yield app, client


def chat_body(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "scripted", "messages": [{"role": "user", "content": content}], **extra}
