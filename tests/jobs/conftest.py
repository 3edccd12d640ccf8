"""Fixtures shared by the job tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from evalserve.jobs.sqlite import SQLiteJobStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteJobStore]:
    """An open, empty SQLite job store in the test's directory."""
    s = SQLiteJobStore(tmp_path / "jobs.db")
    await s.open()
    yield s
    await s.close()
