"""A real evalserve server (uvicorn, `build_app`) in a thread, for the deploy checks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from evalserve.engines.base import Engine
from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.waiting import wait_for

__all__ = ["serving"]


@contextmanager
def serving(settings: Settings, engine: Engine) -> Iterator[int]:
    """A real uvicorn server of `build_app` on a free port, in a thread; yields the port."""
    server = uvicorn.Server(uvicorn.Config(build_app(settings, engine=engine), host="127.0.0.1",
                                           port=0, log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 30, "uvicorn started")
        assert server.started, "uvicorn did not start"
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
