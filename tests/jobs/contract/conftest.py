"""The contract suite's `store`: every test here runs once on SQLite and once on PostgreSQL
(a fresh file or database each time). `backend.make()` builds another store on the same
file or database, as a second process or replica would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalserve.jobs.postgres import PostgresJobStore
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.jobs.store import JobStore


@dataclass
class Backend:
    name: str
    make: Callable[[], JobStore]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "sub" / "jobs.db"
        return Backend("sqlite", lambda: SQLiteJobStore(path))
    url = request.getfixturevalue("postgres_url")
    return Backend("postgres", lambda: PostgresJobStore(url, pool_size=4, timeout=5))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[JobStore]:
    """An open, empty store of the backend."""
    s = backend.make()
    await s.open()
    yield s
    await s.close()
