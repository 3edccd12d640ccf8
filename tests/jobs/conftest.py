"""Fixtures shared by the job tests: the SQLite `store`, and a real PostgreSQL server with a
fresh database per test (`postgres_url`) for the PostgreSQL store's tests and the contract
suite (`tests/jobs/contract/`, which runs every test on both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from evalserve.jobs.sqlite import SQLiteJobStore
from tests.postgres_server import PostgresServer, fresh_database, postgres_server_fixture

postgres_server = pytest.fixture(scope="session")(postgres_server_fixture)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteJobStore]:
    """An open, empty SQLite job store in the test's directory."""
    s = SQLiteJobStore(tmp_path / "jobs.db")
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL (with its password) of a new, empty database on the tests' PostgreSQL."""
    if not postgres_server.running:  # a fault test that failed midway left it stopped
        postgres_server.start()
    with fresh_database(postgres_server) as url:
        yield url
