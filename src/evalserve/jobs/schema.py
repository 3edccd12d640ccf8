"""The job database's schema: its tables, its version, the migration from older versions and
the row <-> `Job` conversions the SQLite store uses."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from evalserve.jobs.models import Job, JobOptions, JobStatus

__all__ = ["SCHEMA", "SCHEMA_VERSION", "JOB_COLUMNS", "dumps", "job_from_row", "migrate"]

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    rubric_name TEXT NOT NULL,
    rubric TEXT NOT NULL,
    options TEXT NOT NULL,
    total INTEGER NOT NULL,
    owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    scored INTEGER NOT NULL DEFAULT 0,
    unscored INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    score_sum REAL NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0,
    last_event_id INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    report TEXT,
    lease_owner TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created_at);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    status TEXT NOT NULL,
    score REAL,
    record TEXT NOT NULL,
    created_at REAL NOT NULL,
    event_id INTEGER,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    final INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, id)
) WITHOUT ROWID;
"""

#: `PRAGMA user_version` of the schema above. Older versions are migrated by adding the
#: columns they lack: version 1 had no owners, attempts and error counts, version 2 no
#: `report` (the job's `evalserve.judge.report.job_report`, stored when it completes),
#: version 3 no leases (`lease_owner`, `lease_until`: the replica running the job, and until
#: when; a running job without one is claimable, as if its replica died).
SCHEMA_VERSION = 4
_ADDED = {2: {"owner": "TEXT", "attempts": "INTEGER NOT NULL DEFAULT 0",
              "errors": "INTEGER NOT NULL DEFAULT 0"},
          3: {"report": "TEXT"},
          4: {"lease_owner": "TEXT", "lease_until": "REAL"}}

JOB_COLUMNS = ("id, status, rubric_name, rubric, options, total, owner, attempts, completed, "
                "scored, unscored, errors, score_sum, batches, created_at, started_at, "
                "finished_at, error")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def job_from_row(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], status=JobStatus(row["status"]), rubric_name=row["rubric_name"],
        rubric=json.loads(row["rubric"]), options=JobOptions.from_dict(json.loads(row["options"])),
        total=row["total"], owner=row["owner"], attempts=row["attempts"],
        completed=row["completed"], scored=row["scored"], unscored=row["unscored"],
        errors=row["errors"], score_sum=row["score_sum"], batches=row["batches"],
        created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=json.loads(row["error"]) if row["error"] else None,
    )


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database of an older schema version up to `SCHEMA_VERSION` (a new one is
    created whole by `_SCHEMA`)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    has_jobs = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
    if version >= SCHEMA_VERSION or not has_jobs:
        return
    present = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    for added in _ADDED.values():
        for column, decl in added.items():
            if column not in present:
                conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {decl}")
    log.info("job database migrated from schema version %d to %d", version, SCHEMA_VERSION)
