"""Which `JobStore` a deployment uses: PostgreSQL when `DATABASE_URL` is set (every replica on
one database), else the embedded SQLite file under `DATA_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalserve.jobs.store import JobStore

__all__ = ["store_from_settings", "database_path", "DB_NAME"]

DB_NAME = "evalserve.db"


def database_path(data_dir: Path) -> Path:
    """Where the SQLite job database lives under `DATA_DIR`."""
    return Path(data_dir) / DB_NAME


def store_from_settings(settings: Any) -> JobStore:
    """The store `settings` name (not opened yet)."""
    if settings.database_url:
        from evalserve.jobs.postgres import PostgresJobStore

        return PostgresJobStore(settings.database_url, pool_size=settings.database_pool_size)
    from evalserve.jobs.sqlite import SQLiteJobStore

    return SQLiteJobStore(database_path(settings.data_dir))
