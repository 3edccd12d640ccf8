"""A real `redis-server` on a free port in a temporary directory, for tests.

`make test` installs the binary (apt); where it is absent the tests using it are skipped.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import wait_for

__all__ = ["RedisServer", "redis_server_fixture"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """Start/stop one redis-server; `url` is its `redis://` address."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.binary = shutil.which("redis-server")
        self.workdir = workdir
        self.password = password
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        if self.binary is None:
            pytest.skip("redis-server is not installed (`make redis` or apt-get install "
                        "redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.workdir), "--save", "", "--appendonly", "no",
                "--maxmemory-policy", "allkeys-lru"]
        if self.password:
            args += ["--requirepass", self.password]
        log_path = self.workdir / "redis.log"
        with open(log_path, "ab") as log:  # the child keeps its own copy of the handle
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        proc = self.proc

        def answers_ping() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
            except OSError:
                return False

        wait_for(answers_ping, timeout, f"redis-server on port {self.port} answering PING")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def redis_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Body of a `redis_server` fixture: `pytest.fixture(scope=...)(redis_server_fixture)`."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
