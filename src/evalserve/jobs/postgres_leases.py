"""Job leases on PostgreSQL (`PostgresJobStore`'s `runnable_jobs`, `claim_jobs`,
`renew_leases`, `release_leases`): how any number of replicas on one database never run a job
twice (`jobs/store.py`).

A claim is one statement: the candidates in `runnable_jobs` order are locked with
`SELECT ... FOR UPDATE SKIP LOCKED` (rows another replica is claiming right now are skipped,
not waited for) and taken with `UPDATE ... RETURNING`. Under READ COMMITTED a row another
replica claimed and committed meanwhile is re-checked on its new version, found no longer
claimable, and left out: each job is claimed once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from psycopg import AsyncConnection

from evalserve.jobs.models import Job
from evalserve.jobs.schema import JOB_COLUMNS, job_from_row
from evalserve.jobs.store import Claims

__all__ = ["PostgresLeases"]

T = TypeVar("T")
Conn = AsyncConnection[dict[str, Any]]

#: A job a replica may claim: queued, or running under a lease that ran out (or none).
_CLAIMABLE = ("(status = 'queued' OR (status = 'running' AND "
              "(lease_until IS NULL OR lease_until < %(now)s)))")
_RUNNABLE = (f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY owner "
             f"ORDER BY created_at, id) AS turn FROM jobs WHERE {_CLAIMABLE}{{only}}) AS q "
             "ORDER BY started_at IS NULL, turn, created_at, id LIMIT %(limit)s")
_QUALIFIED = ", ".join(f"j.{c.strip()}" for c in JOB_COLUMNS.split(","))


class PostgresLeases:
    """The lease methods of `PostgresJobStore` (it provides `_rows` and `_write`)."""

    _rows: Callable[..., Awaitable[list[dict[str, Any]]]]
    _write: Callable[..., Awaitable[Any]]

    async def runnable_jobs(self, limit: int, *, now: float | None = None) -> list[Job]:
        at = time.time() if now is None else now
        rows = await self._rows(_RUNNABLE.format(only=""), {"now": at, "limit": limit})
        return [job_from_row(r) for r in rows]

    async def claim_jobs(self, replica: str, limit: int, *, lease_seconds: float,
                         max_attempts: int | None = None, among: Sequence[str] | None = None,
                         now: float | None = None) -> Claims:
        at = time.time() if now is None else now
        if limit <= 0 or (among is not None and not among):
            return Claims()
        only = " AND id = ANY(%(among)s::text[])" if among is not None else ""
        sql = (f"WITH c AS (SELECT id AS cid, status AS was, attempts AS tries FROM jobs "
               f"WHERE id IN (SELECT id FROM ({_RUNNABLE.format(only=only)}) AS r) "
               f"AND {_CLAIMABLE} FOR UPDATE SKIP LOCKED) "
               "UPDATE jobs AS j SET status = 'running', lease_owner = %(replica)s, "
               "lease_until = %(until)s, started_at = COALESCE(j.started_at, %(now)s), "
               "attempts = j.attempts + CASE WHEN c.was = 'running' AND "
               "c.tries >= %(max)s THEN 0 ELSE 1 END FROM c WHERE j.id = c.cid "
               f"RETURNING {_QUALIFIED}, c.was, c.tries")
        params = {"now": at, "limit": limit, "among": list(among or ()), "replica": replica,
                  "until": at + lease_seconds, "max": max_attempts}

        async def claim(conn: Conn) -> list[dict[str, Any]]:
            return await (await conn.execute(sql, params)).fetchall()

        rows = await self._write(claim)
        order = {job_id: n for n, job_id in enumerate(among or ())}
        rows.sort(key=lambda r: (order.get(r["id"], 0), r["started_at"] is None,
                                 r["created_at"], r["id"]))
        claims = Claims()
        for r in rows:
            poisoned = (r["was"] == "running" and max_attempts is not None
                        and r["tries"] >= max_attempts)
            (claims.poisoned if poisoned else claims.jobs).append(job_from_row(r))
        return claims

    async def renew_leases(self, replica: str, job_ids: Sequence[str], *,
                           lease_seconds: float, now: float | None = None) -> list[str]:
        if not job_ids:
            return []
        until = (time.time() if now is None else now) + lease_seconds

        async def renew(conn: Conn) -> set[str]:
            cur = await conn.execute(
                "UPDATE jobs SET lease_until = %s WHERE id = ANY(%s::text[]) "
                "AND lease_owner = %s AND status = 'running' RETURNING id",
                (until, list(job_ids), replica))
            return {r["id"] for r in await cur.fetchall()}

        held = await self._write(renew)
        return [j for j in job_ids if j not in held]

    async def release_leases(self, replica: str, job_ids: Sequence[str]) -> int:
        if not job_ids:
            return 0

        async def release(conn: Conn) -> int:
            cur = await conn.execute(
                "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL, "
                "attempts = GREATEST(0, attempts - 1) WHERE id = ANY(%s::text[]) "
                "AND lease_owner = %s AND status = 'running'", (list(job_ids), replica))
            return cur.rowcount

        return await self._write(release)
