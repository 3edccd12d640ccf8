"""`SQLiteJobStore`: jobs, items, results and events in one SQLite file (WAL).

Every write goes through one writer thread (one connection, so writes never contend); reads use
a small pool of reader threads, each with its own connection (WAL lets them read while the
writer commits). The event loop only awaits futures. `synchronous=NORMAL` in WAL mode keeps a
committed transaction across a process crash (only an OS crash can lose the last commits).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from evalserve.errors import ConflictError, NotFoundError
from evalserve.jobs.models import Job, JobEvent, JobOptions, JobStatus, ResultRow
from evalserve.jobs.store import JobStore, NewEvent, PendingItem, StatusChange

__all__ = ["SQLiteJobStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA = """
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
    error TEXT
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

#: `PRAGMA user_version` of the schema above. Version 1 (before owners, attempts and error
#: counts) is migrated by adding those columns.
SCHEMA_VERSION = 2
_ADDED_IN_2 = {"owner": "TEXT", "attempts": "INTEGER NOT NULL DEFAULT 0",
               "errors": "INTEGER NOT NULL DEFAULT 0"}

_JOB_COLUMNS = ("id, status, rubric_name, rubric, options, total, owner, attempts, completed, "
                "scored, unscored, errors, score_sum, batches, created_at, started_at, "
                "finished_at, error")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _job(row: sqlite3.Row) -> Job:
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


class SQLiteJobStore(JobStore):
    """The embedded job store: `path` is the database file (created with its directory)."""

    def __init__(self, path: Path, *, readers: int = 2) -> None:
        self.path = Path(path)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="jobs-sqlite-w")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="jobs-sqlite-r")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._opened = False

    # -- plumbing ---------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                   isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return out

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, lambda: fn(self._conn()))

    async def open(self) -> None:
        if self._opened:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def create() -> None:
            conn = self._conn()
            _migrate(conn)
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        await asyncio.get_running_loop().run_in_executor(self._writer, create)
        self._opened = True

    async def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    # -- jobs -------------------------------------------------------------------------------

    async def create_job(self, job: Job, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        rows = [(job.id, i, item_id, _dumps(data)) for i, (item_id, data) in enumerate(items)]

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO jobs (id, status, rubric_name, rubric, options, total, owner, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.status.value, job.rubric_name, _dumps(job.rubric),
                 _dumps(job.options.to_dict()), job.total, job.owner, job.created_at),
            )
            conn.executemany("INSERT INTO items (job_id, idx, item_id, data) VALUES (?, ?, ?, ?)",
                             rows)

        await self._write(insert)

    async def get_job(self, job_id: str) -> Job:
        def get(conn: sqlite3.Connection) -> sqlite3.Row | None:
            return conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?",
                                (job_id,)).fetchone()

        row = await self._read(get)
        if row is None:
            raise NotFoundError(f"no job {job_id!r}: it never existed or it expired "
                                "(finished jobs are kept JOB_TTL_SECONDS)")
        return _job(row)

    async def list_jobs(self, status: JobStatus | None = None, limit: int = 50, *,
                        owner: str | None = None) -> list[Job]:
        where, args = [], []
        if status is not None:
            where.append("status = ?")
            args.append(status.value)
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        clause = f"WHERE {' AND '.join(where)} " if where else ""

        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs {clause}"
                                "ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()

        return [_job(r) for r in await self._read(select)]

    async def runnable_jobs(self, limit: int) -> list[Job]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY owner "
                "ORDER BY created_at) AS turn FROM jobs WHERE status = 'queued') "
                "ORDER BY started_at IS NULL, turn, created_at LIMIT ?", (limit,)).fetchall()

        return [_job(r) for r in await self._read(select)]

    async def requeue_interrupted(self, max_attempts: int | None = None) -> tuple[int, list[Job]]:
        def requeue(conn: sqlite3.Connection) -> tuple[int, list[Job]]:
            poisoned: list[Job] = []
            if max_attempts is not None:
                poisoned = [_job(r) for r in conn.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = 'running' "
                    "AND attempts >= ?", (max_attempts,))]
            keep = [j.id for j in poisoned]
            marks = ",".join("?" * len(keep))
            requeued = conn.execute(
                "UPDATE jobs SET status = 'queued' WHERE status = 'running'"
                + (f" AND id NOT IN ({marks})" if keep else ""), keep).rowcount
            return requeued, poisoned

        return await self._write(requeue)

    async def count_active(self) -> int:
        return await self._read(lambda conn: conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0])

    async def count_queued(self, owner: str | None) -> int:
        return await self._read(lambda conn: conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND owner IS ?",
            (owner,)).fetchone()[0])

    async def retry_items(self, job_id: str, *, unscored: bool = False) -> int:
        statuses = ("error", "unscored") if unscored else ("error",)
        marks = ",".join("?" * len(statuses))

        def retry(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no job {job_id!r}: it never existed or it expired "
                                    "(finished jobs are kept JOB_TTL_SECONDS)")
            if not JobStatus(row["status"]).finished:
                raise ConflictError(f"job {job_id} is {row['status']}; only a finished job's "
                                    "items can be retried")
            n = conn.execute(f"DELETE FROM results WHERE job_id = ? AND status IN ({marks})",
                             (job_id, *statuses)).rowcount
            if n == 0:
                kinds = "error or unscored" if unscored else "error"
                raise ConflictError(f"job {job_id} has no {kinds} items to retry")
            conn.execute(
                "UPDATE jobs SET status = 'queued', finished_at = NULL, error = NULL, "
                "attempts = 0, completed = c.n, scored = c.s, unscored = c.u, errors = c.e, "
                "score_sum = c.total FROM (SELECT COUNT(*) AS n, "
                "COUNT(*) FILTER (WHERE status = 'scored' AND score IS NOT NULL) AS s, "
                "COUNT(*) FILTER (WHERE status = 'error') AS e, "
                "COUNT(*) FILTER (WHERE status != 'error' AND NOT (status = 'scored' AND "
                "score IS NOT NULL)) AS u, "
                "COALESCE(SUM(score) FILTER (WHERE status = 'scored'), 0) AS total "
                "FROM results WHERE job_id = ?) AS c WHERE id = ?", (job_id, job_id))
            conn.execute("UPDATE events SET final = 0 WHERE job_id = ? AND final = 1", (job_id,))
            return n

        return await self._write(retry)

    # -- items and results -------------------------------------------------------------------

    async def pending_items(self, job_id: str, after_idx: int, limit: int) -> list[PendingItem]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT i.idx, i.item_id, i.data FROM items i WHERE i.job_id = ? AND i.idx > ? "
                "AND NOT EXISTS (SELECT 1 FROM results r WHERE r.job_id = i.job_id "
                "AND r.idx = i.idx) ORDER BY i.idx LIMIT ?", (job_id, after_idx, limit)).fetchall()

        return [PendingItem(r["idx"], r["item_id"], json.loads(r["data"]))
                for r in await self._read(select)]

    async def unannounced_results(self, job_id: str) -> list[ResultRow]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT idx, item_id, status, score, record FROM results "
                "WHERE job_id = ? AND event_id IS NULL ORDER BY idx", (job_id,)).fetchall()

        return [ResultRow(job_id, r["idx"], r["item_id"], r["status"], r["score"],
                          json.loads(r["record"])) for r in await self._read(select)]

    async def commit(
        self,
        results: Sequence[ResultRow] = (),
        events: Sequence[NewEvent] = (),
        status: Sequence[StatusChange] = (),
    ) -> list[JobEvent]:
        import time

        def run(conn: sqlite3.Connection) -> list[JobEvent]:
            now = time.time()
            for r in results:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO results (job_id, idx, item_id, status, score, record, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (r.job_id, r.idx, r.item_id, r.status, r.score, _dumps(r.record), now))
                if cur.rowcount == 0:
                    log.warning("job %s item %d already had a result; kept the first", r.job_id,
                                r.idx)
                    continue
                scored = r.status == "scored" and r.score is not None
                error = r.status == "error"
                conn.execute(
                    "UPDATE jobs SET completed = completed + 1, scored = scored + ?, "
                    "unscored = unscored + ?, errors = errors + ?, score_sum = score_sum + ? "
                    "WHERE id = ?",
                    (int(scored), int(not scored and not error), int(error),
                     float(r.score) if scored else 0.0, r.job_id))
            stored: list[JobEvent] = []
            for e in events:
                event_id = conn.execute(
                    "UPDATE jobs SET last_event_id = last_event_id + 1, batches = batches + ? "
                    "WHERE id = ? RETURNING last_event_id",
                    (int(e.type == "batch_complete"), e.job_id)).fetchone()[0]
                conn.execute(
                    "INSERT INTO events (job_id, id, type, data, final, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (e.job_id, event_id, e.type, _dumps(e.data), int(e.final), now))
                if e.announces:
                    conn.executemany(
                        "UPDATE results SET event_id = ? WHERE job_id = ? AND idx = ?",
                        [(event_id, e.job_id, idx) for idx in e.announces])
                stored.append(JobEvent(e.job_id, event_id, e.type, e.data, e.final))
            for s in status:
                conn.execute(
                    "UPDATE jobs SET status = ?, started_at = COALESCE(started_at, ?), "
                    "finished_at = COALESCE(?, finished_at), error = COALESCE(?, error), "
                    "attempts = attempts + ? WHERE id = ?",
                    (s.status.value, s.started_at, s.finished_at,
                     _dumps(s.error) if s.error else None,
                     int(s.status is JobStatus.RUNNING), s.job_id))
            return stored

        return await self._write(run)

    async def events_after(self, job_id: str, after_id: int, limit: int = 500) -> list[JobEvent]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT id, type, data, final FROM events WHERE job_id = ? AND id > ? "
                "ORDER BY id LIMIT ?", (job_id, after_id, limit)).fetchall()

        return [JobEvent(job_id, r["id"], r["type"], json.loads(r["data"]), bool(r["final"]))
                for r in await self._read(select)]

    async def records(self, job_id: str, after_idx: int = -1,
                      limit: int = 1000) -> list[tuple[int, dict]]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT idx, record FROM results WHERE job_id = ? AND idx > ? ORDER BY idx "
                "LIMIT ?", (job_id, after_idx, limit)).fetchall()

        return [(r["idx"], json.loads(r["record"])) for r in await self._read(select)]

    async def delete_expired(self, finished_before: float) -> list[str]:
        def delete(conn: sqlite3.Connection) -> list[str]:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? "
                "AND status IN ('completed', 'cancelled', 'failed')", (finished_before,))]
            for job_id in ids:
                for table in ("items", "results", "events"):
                    conn.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            return ids

        return await self._write(delete)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a database of an older schema version up to `SCHEMA_VERSION` (a new one is
    created whole by `_SCHEMA`)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    has_jobs = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
    if version >= SCHEMA_VERSION or not has_jobs:
        return
    present = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    for column, decl in _ADDED_IN_2.items():
        if column not in present:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {decl}")
    log.info("job database migrated from schema version %d to %d", version, SCHEMA_VERSION)
