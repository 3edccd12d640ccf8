"""deploy/healthcheck.py against a real evalserve server: it passes only once `/health` says
"healthy", while `/health` itself answers 200 from the start (the reason the probes use it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import httpx

from evalserve.settings import Settings
from tests.deploy.live import serving
from tests.deploy.variables import DEPLOY
from tests.fakes import FailingEngine, ScriptedEngine
from tests.waiting import wait_for

SCRIPT = DEPLOY / "healthcheck.py"


class LoadingEngine(ScriptedEngine):
    """A model that loads until the test sets `loaded`."""

    def __init__(self) -> None:
        super().__init__(lambda request: "")
        self.loaded = threading.Event()

    async def start(self) -> None:
        await asyncio.to_thread(self.loaded.wait)
        await super().start()


def check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=30, env={**os.environ, **(env or {})})


def test_it_fails_while_the_model_loads_and_passes_once_it_is_loaded(settings: Settings) -> None:
    engine = LoadingEngine()
    try:
        with serving(settings, engine) as port:
            url = f"http://127.0.0.1:{port}/health"
            loading = httpx.get(url)
            assert (loading.status_code, loading.json()["status"]) == (200, "loading")
            result = check(url)
            assert result.returncode == 1 and "'loading'" in result.stderr
            engine.loaded.set()
            wait_for(lambda: check(url).returncode == 0, 30, "the check passing once loaded")
            # without an argument it asks 127.0.0.1 on PORT, as in the image
            assert check(env={"PORT": str(port)}).returncode == 0
    finally:
        engine.loaded.set()


def test_it_fails_when_the_model_failed_to_load(settings: Settings) -> None:
    with serving(settings, FailingEngine()) as port:
        url = f"http://127.0.0.1:{port}/health"
        wait_for(lambda: httpx.get(url).json()["status"] == "error", 30, "/health saying error")
        result = check(url)
        assert result.returncode == 1 and "'error'" in result.stderr


def test_it_fails_when_nothing_listens(settings: Settings) -> None:
    with serving(settings, ScriptedEngine(lambda r: "")) as port:
        pass  # the server is stopped: its port is free
    result = check(f"http://127.0.0.1:{port}/health")
    assert result.returncode == 1 and "refused" in result.stderr.lower()


def test_it_fails_on_an_http_error(settings: Settings) -> None:
    with serving(settings, ScriptedEngine(lambda r: "")) as port:
        result = check(f"http://127.0.0.1:{port}/nowhere")
    assert result.returncode == 1 and "404" in result.stderr
