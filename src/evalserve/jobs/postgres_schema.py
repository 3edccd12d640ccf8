"""The PostgreSQL job database's schema: its migrations, in order, and how they are applied.

The schema's version is the highest row of `schema_version` (one row per applied migration,
with when and what). `migrate` runs at every `PostgresJobStore.open`, in one transaction that
first takes a transaction-level advisory lock: replicas starting together wait for each other,
so each migration runs once, and DDL being transactional in PostgreSQL, a migration that fails
leaves the database at its previous version. A database of a newer version than this code
knows is refused (an older replica must not write into a schema it does not understand).

Version 1 holds what SQLite's schema 3 holds (`jobs/schema.py`: owners, start attempts, error
counts, reports), with PostgreSQL's types: JSON is stored as text, as written (key order and
all), and a result is unique per (job, item) by its primary key. `items`, `results` and
`events` name their job without a foreign key: a per-row check would cost more than the rows
(a million-item job's COPY), and the store writes them only under the job row's lock.

Version 2 adds job leases (`lease_owner`, `lease_until`: the replica running the job and until
when, `jobs/postgres_leases.py`); a job left `running` by version 1 has none and is claimable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from evalserve.errors import ConfigurationError

__all__ = ["Migration", "MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]

log = logging.getLogger(__name__)

#: Key of the advisory lock held while migrating (`b"evaljobs"` as a big-endian int64).
MIGRATION_LOCK = int.from_bytes(b"evaljobs", "big")


@dataclass(frozen=True)
class Migration:
    """The statements that bring the schema from `version - 1` to `version`."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "jobs, items, results and events with owners, attempts, errors and reports", (
        """CREATE TABLE jobs (
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
            score_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
            batches INTEGER NOT NULL DEFAULT 0,
            last_event_id BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            error TEXT,
            report TEXT
        )""",
        "CREATE INDEX jobs_by_status ON jobs (status, created_at)",
        "CREATE INDEX jobs_by_created ON jobs (created_at)",
        "CREATE INDEX jobs_by_owner ON jobs (owner, created_at)",
        """CREATE TABLE items (
            job_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (job_id, idx)
        )""",
        """CREATE TABLE results (
            job_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            status TEXT NOT NULL,
            score DOUBLE PRECISION,
            record TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            event_id BIGINT,
            PRIMARY KEY (job_id, idx)
        )""",
        "CREATE INDEX results_unannounced ON results (job_id, idx) WHERE event_id IS NULL",
        """CREATE TABLE events (
            job_id TEXT NOT NULL,
            id BIGINT NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            final BOOLEAN NOT NULL DEFAULT FALSE,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (job_id, id)
        )""",
    )),
    Migration(2, "job leases: the replica running a job and until when", (
        "ALTER TABLE jobs ADD COLUMN lease_owner TEXT",
        "ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION",
        "CREATE INDEX jobs_by_lease ON jobs (lease_owner) WHERE status = 'running'",
    )),
)

#: The version `MIGRATIONS` bring a database to.
SCHEMA_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""


async def schema_version(conn: AsyncConnection) -> int:
    """The database's schema version (0 before the first migration)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute("SELECT to_regclass('schema_version') IS NOT NULL")
    if not (await cur.fetchone())[0]:
        return 0
    await cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    return int((await cur.fetchone())[0])


async def migrate(conn: AsyncConnection, migrations: tuple[Migration, ...] = MIGRATIONS,
                  *, where: str = "the database") -> tuple[int, int]:
    """Apply the `migrations` the database lacks, in one transaction under the migration
    lock; returns (version before, version now). `ConfigurationError` for a database newer
    than `migrations` (`where` names it in the message, its password redacted)."""
    latest = migrations[-1].version
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute(_VERSION_TABLE)
        before = await schema_version(conn)
        if before > latest:
            raise ConfigurationError(
                f"the job database at {where} has schema version {before}, newer than this "
                f"evalserve's {latest}: upgrade evalserve (every replica sharing DATABASE_URL "
                "must run a version that knows the database's schema)")
        for migration in migrations:
            if migration.version <= before:
                continue
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version, description, applied_at) "
                               "VALUES (%s, %s, %s)",
                               (migration.version, migration.description, time.time()))
    if before < latest:
        log.info("job database at %s migrated from schema version %d to %d", where, before,
                 latest)
    return before, latest

