"""The job database schema: created whole at the current version, migrated from version 1."""

from __future__ import annotations

import sqlite3

from evalserve.jobs.schema import SCHEMA, SCHEMA_VERSION, migrate


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}


def test_version_1_gains_owner_attempts_and_errors() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, "
                 "created_at REAL NOT NULL)")
    conn.execute("PRAGMA user_version = 1")
    migrate(conn)
    assert {"owner", "attempts", "errors"} <= _columns(conn)
    conn.executescript(SCHEMA)  # the rest of the schema goes on top of the migrated table
    assert {"items", "results", "events"} <= {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_new_or_current_database_is_left_alone() -> None:
    conn = sqlite3.connect(":memory:")
    migrate(conn)  # no jobs table yet: SCHEMA creates it whole
    assert _columns(conn) == set()
    conn.executescript(SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    before = _columns(conn)
    migrate(conn)
    assert _columns(conn) == before and "owner" in before


def test_version_2_gains_the_report_column() -> None:
    """Schema 3 stores each completed job's report; a version-2 database gains the column
    (NULL for its jobs) instead of failing on the new SELECT and UPDATE."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, owner TEXT, "
                 "attempts INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0)")
    conn.execute("INSERT INTO jobs (id, status) VALUES ('old', 'completed')")
    conn.execute("PRAGMA user_version = 2")
    migrate(conn)
    assert "report" in _columns(conn)
    assert conn.execute("SELECT report FROM jobs").fetchall() == [(None,)]
    assert SCHEMA_VERSION == 4
