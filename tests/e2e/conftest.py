"""End-to-end fixtures: one real server on the bundled model, shared by the e2e tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess, close_clients


@pytest.fixture(autouse=True)
def _close_openai_clients() -> Iterator[None]:
    yield
    close_clients()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with default settings on the bundled model (session-wide; do not mutate)."""
    server = ServerProcess(tmp_path_factory.mktemp("live") / "data",
                           env={"MAX_NEW_TOKENS": "48"}).start()
    yield server
    server.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    """Start extra servers with custom env; all are stopped after the test."""
    started: list[ServerProcess] = []

    def make(env: dict[str, str] | None = None, data_dir: Path | None = None,
             wait: bool = True) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / f"data{len(started)}", env)
        started.append(server)
        return server.start(wait=wait)

    yield make
    for server in started:
        server.stop()
