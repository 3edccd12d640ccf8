"""A real `evalserve serve` process for end-to-end tests (real bundled model, real HTTP)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import MODEL_CACHE
from tests.waiting import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """Start, wait for, kill and restart a server; `env` holds its settings."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "API_TOKEN"))},
            "DATA_DIR": str(data_dir),
            "MODEL_CACHE_DIR": str(MODEL_CACHE),
            "METRICS_PORT": "0",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_LEVEL": "warning",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 180) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the handle
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "evalserve", "serve"], env=self.env, stdout=log,
                stderr=log,
            )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str,
                 interval: float = 0.2) -> Any:
        """`tests.waiting.wait_for` on this server: fails at once if the process exits, and
        either failure carries the end of the server's log."""

        def check() -> Any:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited while waiting for {what}:\n{self._log_tail()}")
            return predicate()

        try:
            return wait_for(check, timeout, what, interval)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; server log:\n{self._log_tail()}") from None

    def wait_ready(self, timeout: float = 180) -> None:
        def loaded() -> bool:
            try:
                return bool(httpx.get(self.url + "/health", timeout=2).json().get("model_loaded"))
            except httpx.HTTPError:
                return False

        self.wait_for(loaded, timeout, f"{self.url}/health reporting model_loaded")

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


_OPENAI_CLIENTS: list[Any] = []


def client_for(server: ServerProcess, key: str = "none") -> Any:
    """An official `openai.OpenAI` client of `server`'s `/v1`; closed after the test (an open
    client's sockets would surface later as a ResourceWarning in some other test)."""
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)
    _OPENAI_CLIENTS.append(client)
    return client


def close_clients() -> None:
    """Close every client `client_for` made."""
    while _OPENAI_CLIENTS:
        _OPENAI_CLIENTS.pop().close()
