"""Job leases on SQLite (`SQLiteJobStore`'s `runnable_jobs`, `claim_jobs`, `renew_leases`,
`release_leases`): what replicas sharing one database file on one machine use to never run a
job twice (`jobs/store.py`).

A claim is one `BEGIN IMMEDIATE` transaction (the file's write lock, held from its first
statement): it reads the claimable jobs in `runnable_jobs` order and takes them, so of two
processes racing, the second sees the first's claims and takes other jobs.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from evalserve.jobs.models import Job
from evalserve.jobs.schema import JOB_COLUMNS, job_from_row
from evalserve.jobs.store import Claims

__all__ = ["SQLiteLeases"]

T = TypeVar("T")

#: A job a replica may claim: queued, or running under a lease that ran out (or none).
_CLAIMABLE = ("(status = 'queued' OR (status = 'running' AND "
              "(lease_until IS NULL OR lease_until < ?)))")


def _runnable(conn: sqlite3.Connection, limit: int, now: float,
              among: Sequence[str] | None) -> list[sqlite3.Row]:
    only = f" AND id IN ({','.join('?' * len(among))})" if among is not None else ""
    return conn.execute(
        f"SELECT {JOB_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY owner "
        f"ORDER BY created_at) AS turn FROM jobs WHERE {_CLAIMABLE}{only}) "
        "ORDER BY started_at IS NULL, turn, created_at LIMIT ?",
        (now, *(among or ()), limit)).fetchall()


class SQLiteLeases:
    """The lease methods of `SQLiteJobStore` (it provides `_read` and `_write`)."""

    _read: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _write: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]

    async def runnable_jobs(self, limit: int, *, now: float | None = None) -> list[Job]:
        at = time.time() if now is None else now
        return [job_from_row(r) for r in await self._read(
            lambda conn: _runnable(conn, limit, at, None))]

    async def claim_jobs(self, replica: str, limit: int, *, lease_seconds: float,
                         max_attempts: int | None = None, among: Sequence[str] | None = None,
                         now: float | None = None) -> Claims:
        at = time.time() if now is None else now
        if limit <= 0 or (among is not None and not among):
            return Claims()

        def claim(conn: sqlite3.Connection) -> Claims:
            claims = Claims()
            for row in _runnable(conn, limit, at, among):
                poisoned = (row["status"] == "running" and max_attempts is not None
                            and row["attempts"] >= max_attempts)
                conn.execute(
                    "UPDATE jobs SET status = 'running', lease_owner = ?, lease_until = ?, "
                    "started_at = COALESCE(started_at, ?), attempts = attempts + ? "
                    "WHERE id = ?", (replica, at + lease_seconds, at, int(not poisoned),
                                     row["id"]))
                job = job_from_row(conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?",
                                                (row["id"],)).fetchone())
                (claims.poisoned if poisoned else claims.jobs).append(job)
            if among is not None:  # in the caller's order
                order = {job_id: n for n, job_id in enumerate(among)}
                claims.jobs.sort(key=lambda j: order[j.id])
            return claims

        return await self._write(claim)

    async def renew_leases(self, replica: str, job_ids: Sequence[str], *,
                           lease_seconds: float, now: float | None = None) -> list[str]:
        if not job_ids:
            return []
        until = (time.time() if now is None else now) + lease_seconds
        marks = ",".join("?" * len(job_ids))

        def renew(conn: sqlite3.Connection) -> list[str]:
            held = {r[0] for r in conn.execute(
                f"UPDATE jobs SET lease_until = ? WHERE id IN ({marks}) AND lease_owner = ? "
                "AND status = 'running' RETURNING id", (until, *job_ids, replica))}
            return [j for j in job_ids if j not in held]

        return await self._write(renew)

    async def release_leases(self, replica: str, job_ids: Sequence[str]) -> int:
        if not job_ids:
            return 0
        marks = ",".join("?" * len(job_ids))
        return await self._write(lambda conn: conn.execute(
            "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL, "
            f"attempts = MAX(0, attempts - 1) WHERE id IN ({marks}) AND lease_owner = ? "
            "AND status = 'running'", (*job_ids, replica)).rowcount)
