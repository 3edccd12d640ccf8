"""The body of `PostgresJobStore.commit`: results, counters, events and status changes of
several jobs in one transaction (the caller opens and ends it).

In order: the touched job rows are locked in id order (`FOR UPDATE`: two writers, later two
replicas, never deadlock, and each job's `last_event_id` is read under the lock); results are
inserted with `ON CONFLICT DO NOTHING` and only those inserted count; events are numbered from
each job's `last_event_id`; announced results point to their event; counters, event numbers
and batch counts are written once per job; then the status changes, in their order.

A `batch_complete` announcing only results already announced is the retry of a commit the
server took while its answer was lost: it is not stored again, and the events that announced
those results are returned in its place (subscribers skip ids they already have).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, AsyncCursor

from evalserve.jobs.models import EventType, JobEvent, JobStatus, ResultRow
from evalserve.jobs.schema import dumps
from evalserve.jobs.store import NewEvent, StatusChange, job_not_found

__all__ = ["store_commit"]

log = logging.getLogger(__name__)

Conn = AsyncConnection[dict[str, Any]]


@dataclass
class _Counts:
    """What one commit adds to a job's row."""

    completed: int = 0
    scored: int = 0
    unscored: int = 0
    errors: int = 0
    score_sum: float = 0.0
    batches: int = 0
    last_event_id: int = 0

    def add(self, status: str, score: float | None) -> None:
        self.completed += 1
        if status == "scored" and score is not None:
            self.scored += 1
            self.score_sum += float(score)
        elif status == "error":
            self.errors += 1
        else:
            self.unscored += 1


async def store_commit(conn: Conn, now: float, results: Sequence[ResultRow],
                       records: Sequence[str], events: Sequence[NewEvent],
                       datas: Sequence[str], status: Sequence[StatusChange]) -> list[JobEvent]:
    """Store it all on `conn`, inside the caller's transaction; the stored events.
    `records` and `datas` are the results' records and the events' data, serialized.

    Two groups of statements, each sent at once on a connection in pipeline mode (two round
    trips however many rows): what must be read (the locked jobs, the results inserted, the
    results announced already), then every write, computed from what was read."""
    job_ids = sorted({r.job_id for r in results} | {e.job_id for e in events}
                     | {s.job_id for s in status})
    locked = await conn.execute("SELECT id, last_event_id FROM jobs WHERE id = ANY(%s::text[]) "
                                "ORDER BY id FOR UPDATE", (job_ids,))
    inserted = await _insert_results(conn, now, results, records) if results else None
    announcing: dict[str, set[int]] = defaultdict(set)
    for e in events:
        announcing[e.job_id].update(e.announces)
    earlier = [await conn.execute(
        "SELECT job_id, idx, event_id FROM results WHERE job_id = %s AND idx = ANY(%s::int[]) "
        "AND event_id IS NOT NULL", (job_id, sorted(idxs)))
        for job_id, idxs in announcing.items() if idxs]

    counts = {r["id"]: _Counts(last_event_id=r["last_event_id"])
              for r in await locked.fetchall()}
    for r in results:
        if r.job_id not in counts:
            raise job_not_found(r.job_id)
    touched: set[str] = set()
    if inserted is not None:
        rows = await inserted.fetchall()
        _warn_repeated(results, rows)
        for row in rows:
            counts[row["job_id"]].add(row["status"], row["score"])
            touched.add(row["job_id"])
    announced = {(r["job_id"], r["idx"]): r["event_id"]
                 for cur in earlier for r in await cur.fetchall()}

    stored, replayed = await _store_events(conn, now, events, datas, counts, touched,
                                           announced)
    for job_id in sorted(touched):
        c = counts[job_id]
        await conn.execute(
            "UPDATE jobs SET completed = completed + %s, scored = scored + %s, "
            "unscored = unscored + %s, errors = errors + %s, score_sum = score_sum + %s, "
            "batches = batches + %s, last_event_id = %s WHERE id = %s",
            (c.completed, c.scored, c.unscored, c.errors, c.score_sum, c.batches,
             c.last_event_id, job_id))
    for s in status:
        await conn.execute(
            "UPDATE jobs SET status = %s, started_at = COALESCE(started_at, %s::float8), "
            "finished_at = COALESCE(%s::float8, finished_at), error = COALESCE(%s::text, error), "
            "report = COALESCE(%s::text, report), attempts = GREATEST(0, attempts + %s - %s) "
            "WHERE id = %s",
            (s.status.value, s.started_at, s.finished_at, dumps(s.error) if s.error else None,
             dumps(s.report) if s.report is not None else None,
             int(s.status is JobStatus.RUNNING), int(s.handed_back), s.job_id))
    if replayed:
        stored = await _with_replayed(conn, stored, replayed)
    return stored


async def _insert_results(conn: Conn, now: float, results: Sequence[ResultRow],
                          records: Sequence[str]) -> AsyncCursor:
    """Insert the results not stored yet; the cursor returns (job_id, idx, status, score) of
    those inserted."""
    return await conn.execute(
        "INSERT INTO results (job_id, idx, item_id, status, score, record, created_at) "
        "SELECT j, i, it, st, sc, rec, %s FROM unnest(%s::text[], %s::int[], %s::text[], "
        "%s::text[], %s::float8[], %s::text[]) AS u(j, i, it, st, sc, rec) "
        "ON CONFLICT (job_id, idx) DO NOTHING RETURNING job_id, idx, status, score",
        (now, [r.job_id for r in results], [r.idx for r in results],
         [r.item_id for r in results], [r.status for r in results],
         [None if r.score is None else float(r.score) for r in results], list(records)))


def _warn_repeated(results: Sequence[ResultRow], inserted: list[dict[str, Any]]) -> None:
    if len(inserted) == len(results):
        return
    fresh = {(r["job_id"], r["idx"]) for r in inserted}
    for r in results:
        if (r.job_id, r.idx) not in fresh:
            log.warning("job %s item %d already had a result; kept the first", r.job_id, r.idx)


async def _store_events(conn: Conn, now: float, events: Sequence[NewEvent],
                        datas: Sequence[str], counts: dict[str, _Counts], touched: set[str],
                        announced: dict[tuple[str, int], int]
                        ) -> tuple[list[JobEvent], dict[str, set[int]]]:
    """Number and insert the events, point the results they announce at them. Returns the
    stored events (a replayed batch as a placeholder of id -1) and, per job, the ids of the
    earlier events that replayed batches stand for."""
    stored: list[JobEvent] = []
    replayed: dict[str, set[int]] = defaultdict(set)
    rows: list[tuple[str, int, str, str, bool]] = []
    links: dict[str, dict[int, int]] = defaultdict(dict)
    for e, data in zip(events, datas, strict=True):
        if e.job_id not in counts:
            raise job_not_found(e.job_id)
        if e.announces and all((e.job_id, idx) in announced for idx in e.announces):
            log.warning("job %s: a %s announcing only announced results (a commit retried "
                        "after its answer was lost) is not stored again", e.job_id, e.type)
            replayed[e.job_id] |= {announced[(e.job_id, idx)] for idx in e.announces}
            stored.append(JobEvent(e.job_id, -1, e.type, {}, e.final))
            continue
        c = counts[e.job_id]
        c.last_event_id += 1
        c.batches += int(e.type == EventType.BATCH)
        touched.add(e.job_id)
        rows.append((e.job_id, c.last_event_id, e.type, data, e.final))
        links[e.job_id].update(dict.fromkeys(e.announces, c.last_event_id))
        stored.append(JobEvent(e.job_id, c.last_event_id, e.type, e.data, e.final))
    if rows:
        await conn.execute(
            "INSERT INTO events (job_id, id, type, data, final, created_at) "
            "SELECT j, i, t, d, f, %s FROM unnest(%s::text[], %s::bigint[], %s::text[], "
            "%s::text[], %s::bool[]) AS u(j, i, t, d, f)",
            (now, *(list(col) for col in zip(*rows, strict=True))))
    for job_id, announces in links.items():
        if announces:
            await conn.execute(
                "UPDATE results AS r SET event_id = a.e FROM unnest(%s::int[], %s::bigint[]) "
                "AS a(i, e) WHERE r.job_id = %s AND r.idx = a.i",
                (list(announces), list(announces.values()), job_id))
    return stored, replayed


async def _with_replayed(conn: Conn, stored: list[JobEvent],
                         replayed: dict[str, set[int]]) -> list[JobEvent]:
    """`stored` with each replayed placeholder (id -1) replaced by the earlier events."""
    earlier: dict[str, list[JobEvent]] = {}
    for job_id, ids in replayed.items():
        cur = await conn.execute("SELECT id, type, data, final FROM events WHERE job_id = %s "
                                 "AND id = ANY(%s::bigint[]) ORDER BY id", (job_id, sorted(ids)))
        earlier[job_id] = [JobEvent(job_id, r["id"], r["type"], json.loads(r["data"]),
                                    r["final"]) for r in await cur.fetchall()]
    out: list[JobEvent] = []
    for event in stored:
        if event.id == -1:
            out.extend(earlier.pop(event.job_id, []))
        else:
            out.append(event)
    return out
