"""`PostgresJobStore`: jobs, items, results and events in PostgreSQL (`DATABASE_URL`).

psycopg 3 on the event loop itself (no threads), through a `psycopg_pool.AsyncConnectionPool`
of at most `DATABASE_POOL_SIZE` connections; one idle for a second is checked when taken (a
connection the server dropped is replaced, not handed out). Reads run in autocommit; every
write is one transaction (`_write`), rolled back on any error and ended on every path; a
commit's statements go in pipeline mode (two round trips, however many rows).

`commit` locks the job rows it touches (`SELECT ... FOR UPDATE`, in id order, so two writers
never deadlock), inserts the results with `ON CONFLICT DO NOTHING` (a result is unique per
(job, item): one stored already is neither stored nor counted again), numbers the events from
the job's `last_event_id`, and updates counters, announcements and status in the same
transaction. Over a network a commit can fail after the server committed it (the connection
dropped before the answer): the retried commit stores no result twice, and a `batch_complete`
whose results all were announced already is not stored again: the events that announced them
are returned instead, so nothing is announced twice.

Storage faults (`jobs/postgres_faults.py`) are `StorageFullError`; the URL's password is
never logged nor put in a message. The schema is created and migrated at `open`
(`jobs/postgres_schema.py`); job leases, for replicas sharing the database, are
`jobs/postgres_leases.py`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from evalserve.errors import ConflictError
from evalserve.jobs.models import Job, JobEvent, JobStatus, ResultRow
from evalserve.jobs.postgres_commit import commit_one_job, store_commit
from evalserve.jobs.postgres_faults import configuration_fault, storage_fault
from evalserve.jobs.postgres_leases import PostgresLeases
from evalserve.jobs.postgres_listen import EventListener
from evalserve.jobs.postgres_schema import migrate
from evalserve.jobs.schema import JOB_COLUMNS, dumps, job_from_row
from evalserve.jobs.store import JobStore, NewEvent, PendingItem, StatusChange, job_not_found
from evalserve.redact import redact_url

__all__ = ["PostgresJobStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Conn = AsyncConnection[dict[str, Any]]

#: Seconds a pooled connection may have been idle and still be handed out unchecked.
_CHECK_IDLE = 1.0

#: PostgreSQL's bigint range: ids and indexes beyond it match nothing.
_MAX_ID = 2**63 - 1


def _clamp(n: int) -> int:
    return max(-_MAX_ID - 1, min(n, _MAX_ID))


class PostgresJobStore(PostgresLeases, JobStore):
    """The shared job store: `url` is a `postgresql://user:password@host:port/db` URL.

    `pool_size`: most connections held. `timeout`: seconds a call waits for a connection
    (the server down or every connection busy) before it fails with `StorageFullError`."""

    def __init__(self, url: str, *, pool_size: int = 10, timeout: float = 10.0) -> None:
        self.url = url
        self.where = redact_url(url)
        self.pool_size = pool_size
        self.timeout = timeout
        self._pool: AsyncConnectionPool | None = None
        self._idle_since: WeakKeyDictionary[AsyncConnection, float] = WeakKeyDictionary()
        self.listener: EventListener | None = None

    def __repr__(self) -> str:
        return f"PostgresJobStore({self.where!r}, pool_size={self.pool_size})"

    # -- plumbing ---------------------------------------------------------------------------

    def _fault(self, exc: BaseException, writing: bool) -> Exception | None:
        return storage_fault(exc, writing=writing, where=self.where, timeout=self.timeout,
                             pool_size=self.pool_size)

    async def _run(self, fn: Callable[[Conn], Awaitable[T]], writing: bool,
                   pipeline: bool = False, transaction: bool = True) -> T:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL job store is not open: await store.open() first")
        try:
            async with self._pool.connection() as conn:
                if not (writing and transaction):
                    return await fn(conn)
                if pipeline:
                    async with conn.pipeline(), conn.transaction():
                        return await fn(conn)
                async with conn.transaction():
                    return await fn(conn)
        except psycopg.Error as exc:  # PoolTimeout is one too
            error = self._fault(exc, writing)
            if error is None:
                raise
            raise error from exc

    async def _write(self, fn: Callable[[Conn], Awaitable[T]], *, pipeline: bool = False) -> T:
        """`fn` in one transaction (committed when it returns, rolled back if it raises);
        with `pipeline`, its statements are sent without waiting for each answer (only a
        fetch waits), so a commit of many statements costs a couple of round trips."""
        return await self._run(fn, writing=True, pipeline=pipeline)

    async def _read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        return await self._run(fn, writing=False)

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async def select(conn: Conn) -> list[dict[str, Any]]:
            return await (await conn.execute(sql, args)).fetchall()

        return await self._read(select)

    async def _check(self, conn: AsyncConnection) -> None:
        """Check a connection idle for more than `_CHECK_IDLE` s before it is handed out (one
        the server dropped meanwhile, a restart, is replaced instead of failing the call);
        one in use a moment ago is not checked, which saves a round trip per call."""
        since = self._idle_since.get(conn)
        if since is None or time.monotonic() - since > _CHECK_IDLE:
            await AsyncConnectionPool.check_connection(conn)

    async def _returned(self, conn: AsyncConnection) -> None:
        self._idle_since[conn] = time.monotonic()

    def _kwargs(self) -> dict[str, Any]:
        return {"autocommit": True, "row_factory": dict_row,
                "connect_timeout": max(1, round(self.timeout))}

    async def open(self) -> None:
        """Migrate the schema on one connection of its own (whose errors say precisely what
        is wrong: a refused login, a missing database, no server), then open the pool."""
        if self._pool is not None:
            return
        try:
            async with await psycopg.AsyncConnection.connect(self.url, **self._kwargs()) as conn:
                await migrate(conn, where=self.where)
        except psycopg.Error as exc:
            error = configuration_fault(exc, self.where) or self._fault(exc, writing=True)
            if error is None:
                raise
            raise error from exc
        pool = AsyncConnectionPool(
            self.url, min_size=min(2, self.pool_size), max_size=self.pool_size,
            timeout=self.timeout, kwargs=self._kwargs(), open=False, name="evalserve-jobs",
            check=self._check, reset=self._returned)
        await pool.open()
        self._pool = pool
        log.info("job store: PostgreSQL at %s (pool of %d)", self.where, self.pool_size)

    async def listen(self, on_event: Callable[[str, int], None]) -> bool:
        """Every replica's new events, as they commit, on a `LISTEN` connection of its own."""
        if self.listener is None:
            kwargs = {k: v for k, v in self._kwargs().items() if k != "autocommit"}
            self.listener = EventListener(self.url, on_event, where=self.where, connect=kwargs)
            self.listener.start()
        return True

    async def close(self) -> None:
        if self.listener is not None:
            listener, self.listener = self.listener, None
            await listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # -- jobs -------------------------------------------------------------------------------

    async def create_job(self, job: Job, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        rows = [(job.id, i, item_id, dumps(data)) for i, (item_id, data) in enumerate(items)]

        async def insert(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO jobs (id, status, rubric_name, rubric, options, total, owner, "
                "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (job.id, job.status.value, job.rubric_name, dumps(job.rubric),
                 dumps(job.options.to_dict()), job.total, job.owner, job.created_at))
            if rows:
                cur = conn.cursor()
                async with cur.copy("COPY items (job_id, idx, item_id, data) FROM STDIN") as copy:
                    for row in rows:
                        await copy.write_row(row)

        await self._write(insert)

    async def get_job(self, job_id: str) -> Job:
        rows = await self._rows(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
        if not rows:
            raise job_not_found(job_id)
        return job_from_row(rows[0])

    async def list_jobs(self, status: JobStatus | None = None, limit: int = 50, *,
                        owner: str | None = None) -> list[Job]:
        where, args = [], []
        if status is not None:
            where.append("status = %s")
            args.append(status.value)
        if owner is not None:
            where.append("owner = %s")
            args.append(owner)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = await self._rows(f"SELECT {JOB_COLUMNS} FROM jobs {clause}"
                                "ORDER BY created_at DESC, id DESC LIMIT %s", (*args, limit))
        return [job_from_row(r) for r in rows]

    async def count_active(self) -> int:
        rows = await self._rows("SELECT COUNT(*) AS n FROM jobs "
                                "WHERE status IN ('queued', 'running')")
        return rows[0]["n"]

    async def count_queued(self, owner: str | None) -> int:
        if owner is None:
            rows = await self._rows("SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued' "
                                    "AND owner IS NULL")
        else:
            rows = await self._rows("SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued' "
                                    "AND owner = %s", (owner,))
        return rows[0]["n"]

    async def retry_items(self, job_id: str, *, unscored: bool = False) -> int:
        statuses = ["error", "unscored"] if unscored else ["error"]

        async def retry(conn: Conn) -> int:
            row = await (await conn.execute("SELECT status FROM jobs WHERE id = %s FOR UPDATE",
                                            (job_id,))).fetchone()
            if row is None:
                raise job_not_found(job_id)
            if not JobStatus(row["status"]).finished:
                raise ConflictError(f"job {job_id} is {row['status']}; only a finished job's "
                                    "items can be retried")
            n = (await conn.execute("DELETE FROM results WHERE job_id = %s "
                                    "AND status = ANY(%s::text[])", (job_id, statuses))).rowcount
            if n == 0:
                kinds = "error or unscored" if unscored else "error"
                raise ConflictError(f"job {job_id} has no {kinds} items to retry")
            await conn.execute(
                "UPDATE jobs SET status = 'queued', finished_at = NULL, error = NULL, "
                "report = NULL, attempts = 0, completed = c.n, scored = c.s, unscored = c.u, "
                "errors = c.e, score_sum = c.total FROM (SELECT COUNT(*) AS n, "
                "COUNT(*) FILTER (WHERE status = 'scored' AND score IS NOT NULL) AS s, "
                "COUNT(*) FILTER (WHERE status = 'error') AS e, "
                "COUNT(*) FILTER (WHERE status != 'error' AND NOT (status = 'scored' AND "
                "score IS NOT NULL)) AS u, "
                "COALESCE(SUM(score) FILTER (WHERE status = 'scored'), 0) AS total "
                "FROM results WHERE job_id = %s) AS c WHERE id = %s", (job_id, job_id))
            await conn.execute("UPDATE events SET final = FALSE WHERE job_id = %s AND final",
                               (job_id,))
            return n

        return await self._write(retry)

    # -- items and results -------------------------------------------------------------------

    async def pending_items(self, job_id: str, after_idx: int, limit: int) -> list[PendingItem]:
        rows = await self._rows(
            "SELECT i.idx, i.item_id, i.data FROM items i WHERE i.job_id = %s AND i.idx > %s "
            "AND NOT EXISTS (SELECT 1 FROM results r WHERE r.job_id = i.job_id "
            "AND r.idx = i.idx) ORDER BY i.idx LIMIT %s", (job_id, _clamp(after_idx), limit))
        return [PendingItem(r["idx"], r["item_id"], json.loads(r["data"])) for r in rows]

    async def unannounced_results(self, job_id: str) -> list[ResultRow]:
        rows = await self._rows(
            "SELECT idx, item_id, status, score, record FROM results "
            "WHERE job_id = %s AND event_id IS NULL ORDER BY idx", (job_id,))
        return [ResultRow(job_id, r["idx"], r["item_id"], r["status"], r["score"],
                          json.loads(r["record"])) for r in rows]

    async def commit(
        self,
        results: Sequence[ResultRow] = (),
        events: Sequence[NewEvent] = (),
        status: Sequence[StatusChange] = (),
    ) -> list[JobEvent]:
        if not (results or events or status):
            return []
        now = time.time()
        # Serialized before the transaction: a value JSON cannot hold fails here, at once.
        records = [dumps(r.record) for r in results]
        datas = [dumps(e.data) for e in events]

        jobs = {r.job_id for r in results} | {e.job_id for e in events}
        if not status and len(jobs) == 1:
            # The writer's group commit: one statement, atomic on its own.
            async def one(conn: Conn) -> list[JobEvent]:
                return await commit_one_job(conn, now, jobs.pop(), results, records, events,
                                            datas)

            return await self._run(one, writing=True, transaction=False)

        async def run(conn: Conn) -> list[JobEvent]:
            return await store_commit(conn, now, results, records, events, datas, status)

        return await self._write(run, pipeline=True)

    async def get_report(self, job_id: str) -> dict[str, Any] | None:
        rows = await self._rows("SELECT report FROM jobs WHERE id = %s", (job_id,))
        if not rows:
            raise job_not_found(job_id)
        return json.loads(rows[0]["report"]) if rows[0]["report"] else None

    async def events_after(self, job_id: str, after_id: int, limit: int = 500) -> list[JobEvent]:
        rows = await self._rows(
            "SELECT id, type, data, final FROM events WHERE job_id = %s AND id > %s "
            "ORDER BY id LIMIT %s", (job_id, _clamp(after_id), limit))
        return [JobEvent(job_id, r["id"], r["type"], json.loads(r["data"]), r["final"])
                for r in rows]

    async def records(self, job_id: str, after_idx: int = -1,
                      limit: int = 1000) -> list[tuple[int, dict]]:
        rows = await self._rows(
            "SELECT idx, record FROM results WHERE job_id = %s AND idx > %s ORDER BY idx "
            "LIMIT %s", (job_id, _clamp(after_idx), limit))
        return [(r["idx"], json.loads(r["record"])) for r in rows]

    async def delete_expired(self, finished_before: float) -> list[str]:
        async def delete(conn: Conn) -> list[str]:
            cur = await conn.execute(
                "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < %s "
                "AND status IN ('completed', 'cancelled', 'failed') RETURNING id",
                (finished_before,))
            ids = [r["id"] for r in await cur.fetchall()]
            if ids:
                for table in ("items", "results", "events"):
                    await conn.execute(f"DELETE FROM {table} WHERE job_id = ANY(%s::text[])",
                                       (ids,))
            return ids

        return await self._write(delete)
