"""A real HTTP server (uvicorn, in a thread) running the app on a scripted engine, for CLI
tests of `--server` whose judge must answer known grades."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import httpx
import uvicorn

from evalserve.engines.base import Engine
from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.e2e.server import free_port
from tests.waiting import wait_for

__all__ = ["serving"]


def _loaded(url: str) -> bool:
    try:
        return bool(httpx.get(url + "/health", timeout=2).json().get("model_loaded"))
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def serving(settings: Settings, engine: Engine) -> Iterator[str]:
    """The URL of the app of `settings` on `engine`, listening until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(settings, engine=engine), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on",
                                           log_config=None))
    thread = threading.Thread(target=server.run, name="scripted-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _loaded(url), 60, "the scripted server to answer /health loaded")
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
