"""`SQLiteJobStore`: jobs, items, results and events in one SQLite file (WAL).

Every write goes through one writer thread (one connection, so writes never contend); reads use
a small pool of reader threads, each with its own connection (WAL lets them read while the
writer commits). The event loop only awaits futures. `synchronous=NORMAL` in WAL mode keeps a
committed transaction across a process crash (only an OS crash can lose the last commits).

Every transaction ends on every path: a statement or a COMMIT that fails is rolled back (and a
connection that cannot roll back is dropped), so one failed write never blocks the next. A
write the disk cannot take (`SQLITE_FULL`, `SQLITE_IOERR`, `database is locked`) raises
`StorageFullError` (503); the `ResultWriter` keeps its rows and retries until space is back.
Job leases (several processes on one file): `jobs/sqlite_leases.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from evalserve.errors import ConflictError, StorageFullError
from evalserve.jobs.models import Job, JobEvent, JobStatus, ResultRow
from evalserve.jobs.schema import (
    JOB_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    dumps,
    job_from_row,
    migrate,
)
from evalserve.jobs.sqlite_leases import SQLiteLeases
from evalserve.jobs.store import JobStore, NewEvent, PendingItem, StatusChange, job_not_found

__all__ = ["SQLiteJobStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: SQLite's largest integer: ids beyond it match nothing (and would overflow the binding).
_MAX_ID = 2**63 - 1

#: Primary result codes meaning "the storage cannot take this now", not "this write is wrong".
_UNAVAILABLE = {sqlite3.SQLITE_FULL: "the disk holding DATA_DIR is full",
                sqlite3.SQLITE_IOERR: "the disk holding DATA_DIR failed a read or write",
                sqlite3.SQLITE_BUSY: "another process holds the database lock",
                sqlite3.SQLITE_LOCKED: "another process holds the database lock",
                sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened"}


def _unavailable(exc: sqlite3.Error, writing: bool) -> StorageFullError | None:
    """The `StorageFullError` for a storage fault (None for any other error)."""
    why = _UNAVAILABLE.get(exc.sqlite_errorcode & 0xFF)
    if why is None:
        return None
    if writing:
        return StorageFullError(
            f"the job store cannot write ({why}: {exc}); new jobs are refused until it can: "
            "free space on that disk or stop the other process; running jobs pause and go on "
            "by themselves once it writes again")
    return StorageFullError(f"the job store cannot be read right now ({why}: {exc}); "
                            "retry shortly")


class SQLiteJobStore(SQLiteLeases, JobStore):
    """The embedded job store: `path` is the database file (created with its directory).

    `busy_timeout`: seconds a write waits for another process's lock before it fails with
    `StorageFullError`."""

    def __init__(self, path: Path, *, readers: int = 2, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
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
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout,
                                   check_same_thread=False, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _drop(self, conn: sqlite3.Connection) -> None:
        """Forget this thread's connection (the next call opens a fresh one)."""
        self._local.conn = None
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` in one write transaction, ended on every path: a failing statement or COMMIT
        (a full disk, a deferred constraint) is rolled back."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("a failed job store transaction could not be rolled back; "
                                  "its connection is dropped")
                    self._drop(conn)
            raise
        return out

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            try:
                return self._transaction(fn)
            except sqlite3.Error as exc:
                error = _unavailable(exc, writing=True)
                if error is None:
                    raise
                raise error from exc

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            try:
                return fn(self._conn())
            except sqlite3.Error as exc:
                error = _unavailable(exc, writing=False)
                if error is None:
                    raise
                raise error from exc

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def open(self) -> None:
        if self._opened:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def create() -> None:
            conn = self._conn()
            migrate(conn)
            conn.executescript(SCHEMA)
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
        rows = [(job.id, i, item_id, dumps(data)) for i, (item_id, data) in enumerate(items)]

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO jobs (id, status, rubric_name, rubric, options, total, owner, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.status.value, job.rubric_name, dumps(job.rubric),
                 dumps(job.options.to_dict()), job.total, job.owner, job.created_at),
            )
            conn.executemany("INSERT INTO items (job_id, idx, item_id, data) VALUES (?, ?, ?, ?)",
                             rows)

        await self._write(insert)

    async def get_job(self, job_id: str) -> Job:
        def get(conn: sqlite3.Connection) -> sqlite3.Row | None:
            return conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?",
                                (job_id,)).fetchone()

        row = await self._read(get)
        if row is None:
            raise job_not_found(job_id)
        return job_from_row(row)

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
            return conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs {clause}"
                                "ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()

        return [job_from_row(r) for r in await self._read(select)]

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
                raise job_not_found(job_id)
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
                "report = NULL, attempts = 0, completed = c.n, scored = c.s, unscored = c.u, "
                "errors = c.e, score_sum = c.total FROM (SELECT COUNT(*) AS n, "
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
                    (r.job_id, r.idx, r.item_id, r.status, r.score, dumps(r.record), now))
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
                    (e.job_id, event_id, e.type, dumps(e.data), int(e.final), now))
                if e.announces:
                    conn.executemany(
                        "UPDATE results SET event_id = ? WHERE job_id = ? AND idx = ?",
                        [(event_id, e.job_id, idx) for idx in e.announces])
                stored.append(JobEvent(e.job_id, event_id, e.type, e.data, e.final))
            for s in status:
                conn.execute(
                    "UPDATE jobs SET status = ?, started_at = COALESCE(started_at, ?), "
                    "finished_at = COALESCE(?, finished_at), error = COALESCE(?, error), "
                    "report = COALESCE(?, report), attempts = MAX(0, attempts + ? - ?), "
                    "lease_owner = IIF(?, lease_owner, NULL), "
                    "lease_until = IIF(?, lease_until, NULL) WHERE id = ?",
                    (s.status.value, s.started_at, s.finished_at,
                     dumps(s.error) if s.error else None,
                     dumps(s.report) if s.report is not None else None,
                     int(s.status is JobStatus.RUNNING), int(s.handed_back),
                     *[int(s.status is JobStatus.RUNNING)] * 2, s.job_id))
            return stored

        return await self._write(run)

    async def get_report(self, job_id: str) -> dict[str, Any] | None:
        row = await self._read(lambda conn: conn.execute(
            "SELECT report FROM jobs WHERE id = ?", (job_id,)).fetchone())
        if row is None:
            raise job_not_found(job_id)
        return json.loads(row["report"]) if row["report"] else None

    async def events_after(self, job_id: str, after_id: int, limit: int = 500) -> list[JobEvent]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT id, type, data, final FROM events WHERE job_id = ? AND id > ? "
                "ORDER BY id LIMIT ?", (job_id, min(after_id, _MAX_ID), limit)).fetchall()

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

