"""The body of `PostgresJobStore.commit`: results, counters, events and status changes of
several jobs in one transaction (the caller opens and ends it).

The touched job rows are locked in id order (`FOR UPDATE`: two writers, later two replicas,
never deadlock, and each job's `last_event_id` is read under the lock); results are inserted
with `ON CONFLICT DO NOTHING` and only those inserted count; events are numbered from each
job's `last_event_id`; announced results point to their event; counters, event numbers and
batch counts are written once per job; then the status changes, in their order.

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

from psycopg import AsyncConnection

from evalserve.jobs.models import EventType, JobEvent, JobStatus, ResultRow
from evalserve.jobs.postgres_listen import CHANNEL
from evalserve.jobs.schema import dumps
from evalserve.jobs.store import NewEvent, StatusChange, job_not_found

__all__ = ["store_commit", "commit_one_job"]

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

    Two statements, sent on a connection in pipeline mode (two round trips however many
    rows, and few waits on the event loop): one reads what the writes depend on (it locks
    the jobs and inserts the results: the jobs' event numbers, the results inserted, those
    already announced), the other writes everything computed from it; then the status
    changes, each one statement."""
    counts, inserted, announced = await _read_and_insert(conn, now, results, records, events)
    for r in results:
        if r.job_id not in counts:
            raise job_not_found(r.job_id)
    _warn_repeated(results, inserted)
    touched: set[str] = set()
    for row in inserted:
        counts[row["job_id"]].add(row["status"], row["score"])
        touched.add(row["job_id"])
    stored, replayed, rows, links = _number_events(events, datas, counts, touched, announced)
    await _write(conn, now, rows, links, {j: counts[j] for j in sorted(touched)})
    for s in status:
        await conn.execute(
            "UPDATE jobs SET status = %s, started_at = COALESCE(started_at, %s::float8), "
            "finished_at = COALESCE(%s::float8, finished_at), error = COALESCE(%s::text, error), "
            "report = COALESCE(%s::text, report), attempts = GREATEST(0, attempts + %s - %s), "
            "lease_owner = CASE WHEN %s THEN lease_owner END, "
            "lease_until = CASE WHEN %s THEN lease_until END WHERE id = %s",
            (s.status.value, s.started_at, s.finished_at, dumps(s.error) if s.error else None,
             dumps(s.report) if s.report is not None else None,
             int(s.status is JobStatus.RUNNING), int(s.handed_back),
             *[s.status is JobStatus.RUNNING] * 2, s.job_id))
    notify = {e.job_id: e.id for e in stored if e.id > 0}  # the last new event of each job
    if notify:
        await conn.execute("SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p",
                           (CHANNEL, [f"{j}:{i}" for j, i in notify.items()]))
    if replayed:
        stored = await _with_replayed(conn, stored, replayed)
    return stored


async def _read_and_insert(conn: Conn, now: float, results: Sequence[ResultRow],
                           records: Sequence[str], events: Sequence[NewEvent]
                           ) -> tuple[dict[str, _Counts], list[dict[str, Any]],
                                      dict[tuple[str, int], int]]:
    """One statement: lock the touched jobs (in id order) and read their last event ids,
    insert the results not stored yet, and read which results the events announce that were
    announced already. Returns (counts per job found, rows inserted, announced ids)."""
    job_ids = sorted({r.job_id for r in results} | {e.job_id for e in events})
    parts = ["locked AS (SELECT id, last_event_id FROM jobs WHERE id = ANY(%s::text[]) "
             "ORDER BY id FOR UPDATE)"]
    selects = ["SELECT 'job' AS kind, id AS job_id, last_event_id AS a, NULL::bigint AS b, "
               "NULL::text AS status, NULL::float8 AS score FROM locked"]
    params: list[Any] = [job_ids]
    if results:
        parts.append(
            "ins AS (INSERT INTO results (job_id, idx, item_id, status, score, record, "
            "created_at) SELECT j, i, it, st, sc, rec, %s FROM unnest(%s::text[], %s::int[], "
            "%s::text[], %s::text[], %s::float8[], %s::text[]) AS u(j, i, it, st, sc, rec) "
            "ON CONFLICT (job_id, idx) DO NOTHING RETURNING job_id, idx, status, score)")
        selects.append("SELECT 'result', job_id, idx, NULL, status, score FROM ins")
        params += [now, [r.job_id for r in results], [r.idx for r in results],
                   [r.item_id for r in results], [r.status for r in results],
                   [None if r.score is None else float(r.score) for r in results],
                   list(records)]
    announcing: dict[str, set[int]] = defaultdict(set)
    for e in events:
        announcing[e.job_id].update(e.announces)
    for n, (job_id, idxs) in enumerate(sorted(announcing.items())):
        if idxs:
            # By primary key: one job, its indexes (a join on both from unnest scans them all).
            parts.append(f"a{n} AS (SELECT job_id, idx, event_id FROM results WHERE "
                         "job_id = %s AND idx = ANY(%s::int[]) AND event_id IS NOT NULL)")
            selects.append(f"SELECT 'announced', job_id, idx, event_id, NULL, NULL FROM a{n}")
            params += [job_id, sorted(idxs)]
    if not job_ids:
        return {}, [], {}
    cur = await conn.execute(f"WITH {', '.join(parts)} {' UNION ALL '.join(selects)}", params)
    counts: dict[str, _Counts] = {}
    inserted: list[dict[str, Any]] = []
    announced: dict[tuple[str, int], int] = {}
    for r in await cur.fetchall():
        if r["kind"] == "job":
            counts[r["job_id"]] = _Counts(last_event_id=r["a"])
        elif r["kind"] == "result":
            inserted.append({"job_id": r["job_id"], "idx": r["a"], "status": r["status"],
                             "score": r["score"]})
        else:
            announced[(r["job_id"], r["a"])] = r["b"]
    return counts, inserted, announced


def _warn_repeated(results: Sequence[ResultRow], inserted: list[dict[str, Any]]) -> None:
    if len(inserted) == len(results):
        return
    fresh = {(r["job_id"], r["idx"]) for r in inserted}
    for r in results:
        if (r.job_id, r.idx) not in fresh:
            log.warning("job %s item %d already had a result; kept the first", r.job_id, r.idx)


_EventRow = tuple[str, int, str, str, bool]


def _number_events(events: Sequence[NewEvent], datas: Sequence[str],
                   counts: dict[str, _Counts], touched: set[str],
                   announced: dict[tuple[str, int], int]
                   ) -> tuple[list[JobEvent], dict[str, set[int]], list[_EventRow],
                              dict[str, dict[int, int]]]:
    """Number the events from their jobs' last ids. Returns the stored events (a replayed
    batch as a placeholder of id -1), per job the ids of the earlier events replayed batches
    stand for, the event rows to insert, and per job the results' new event ids."""
    stored: list[JobEvent] = []
    replayed: dict[str, set[int]] = defaultdict(set)
    rows: list[_EventRow] = []
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
    return stored, replayed, rows, links


async def _write(conn: Conn, now: float, rows: list[_EventRow],
                 links: dict[str, dict[int, int]], counts: dict[str, _Counts]) -> None:
    """One statement: insert the events, point the announced results at them, add the
    counts to the jobs."""
    parts: list[str] = []
    params: list[Any] = []
    if rows:
        parts.append("ev AS (INSERT INTO events (job_id, id, type, data, final, created_at) "
                     "SELECT j, i, t, d, f, %s FROM unnest(%s::text[], %s::bigint[], "
                     "%s::text[], %s::text[], %s::bool[]) AS u(j, i, t, d, f))")
        params += [now, *(list(col) for col in zip(*rows, strict=True))]
    for n, (job_id, announces) in enumerate(sorted(links.items())):
        if announces:
            parts.append(f"l{n} AS (UPDATE results AS r SET event_id = a.e FROM "
                         "unnest(%s::int[], %s::bigint[]) AS a(i, e) "
                         "WHERE r.job_id = %s AND r.idx = a.i)")
            params += [list(announces), list(announces.values()), job_id]
    if counts:
        parts.append(
            "jb AS (UPDATE jobs AS j SET completed = j.completed + c.n, scored = j.scored + c.s, "
            "unscored = j.unscored + c.u, errors = j.errors + c.e, "
            "score_sum = j.score_sum + c.total, batches = j.batches + c.b, last_event_id = c.last "
            "FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[], %s::int[], %s::float8[], "
            "%s::int[], %s::bigint[]) AS c(id, n, s, u, e, total, b, last) WHERE j.id = c.id)")
        cs = list(counts.values())
        params += [list(counts), [c.completed for c in cs], [c.scored for c in cs],
                   [c.unscored for c in cs], [c.errors for c in cs], [c.score_sum for c in cs],
                   [c.batches for c in cs], [c.last_event_id for c in cs]]
    if parts:
        await conn.execute(f"WITH {', '.join(parts)} SELECT 1", params)


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


#: The commit of one job's results and events without a status change (the writer's group
#: commit) as one statement: atomic by itself, one round trip, no BEGIN/COMMIT. The same steps
#: as `store_commit`, in SQL: lock the job, find the events that replay announced results,
#: number the others, insert the results (with the event announcing them), point earlier
#: results at their event, insert the events, add the counts, notify the new last event id
#: (`jobs/postgres_listen.py`). Nothing is stored for a job that does not exist (its rows are
#: filtered out; the caller raises).
_ONE_JOB = """
WITH locked AS (SELECT id, last_event_id FROM jobs WHERE id = %(job)s FOR UPDATE),
ev AS (SELECT * FROM unnest(%(e_type)s::text[], %(e_data)s::text[], %(e_final)s::bool[])
       WITH ORDINALITY AS e(t, d, f, o)),
ann AS (SELECT * FROM unnest(%(a_ord)s::bigint[], %(a_idx)s::int[]) AS a(o, i)),
prior AS (SELECT idx, event_id FROM results WHERE job_id = %(job)s
          AND idx = ANY(%(a_idx)s::int[]) AND event_id IS NOT NULL),
replay AS (SELECT ann.o, array_agg(DISTINCT p.event_id) AS ids FROM ann
           LEFT JOIN prior p ON p.idx = ann.i GROUP BY ann.o HAVING bool_and(p.idx IS NOT NULL)),
numbered AS (SELECT ev.*, (SELECT last_event_id FROM locked)
                          + row_number() OVER (ORDER BY ev.o) AS id
             FROM ev WHERE ev.o NOT IN (SELECT o FROM replay)),
links AS (SELECT ann.i AS idx, max(n.id) AS id FROM ann JOIN numbered n ON n.o = ann.o
          GROUP BY ann.i),
ins AS (INSERT INTO results (job_id, idx, item_id, status, score, record, created_at, event_id)
        SELECT %(job)s, u.i, u.it, u.st, u.sc, u.rec, %(now)s, l.id
        FROM unnest(%(r_idx)s::int[], %(r_item)s::text[], %(r_status)s::text[],
                    %(r_score)s::float8[], %(r_record)s::text[]) AS u(i, it, st, sc, rec)
        LEFT JOIN links l ON l.idx = u.i WHERE EXISTS (SELECT 1 FROM locked)
        ON CONFLICT (job_id, idx) DO NOTHING RETURNING idx, status, score),
relink AS (UPDATE results AS r SET event_id = l.id FROM links l
           WHERE r.job_id = %(job)s AND r.idx = l.idx),
evins AS (INSERT INTO events (job_id, id, type, data, final, created_at)
          SELECT %(job)s, n.id, n.t, n.d, n.f, %(now)s FROM numbered n
          WHERE EXISTS (SELECT 1 FROM locked)),
agg AS (SELECT count(*) AS n,
               count(*) FILTER (WHERE status = 'scored' AND score IS NOT NULL) AS s,
               count(*) FILTER (WHERE status = 'error') AS e,
               COALESCE(sum(score) FILTER (WHERE status = 'scored'
                                           AND score IS NOT NULL), 0) AS total FROM ins),
evagg AS (SELECT count(*) FILTER (WHERE t = 'batch_complete') AS b, max(id) AS last
          FROM numbered),
jb AS (UPDATE jobs AS j SET completed = j.completed + agg.n, scored = j.scored + agg.s,
              errors = j.errors + agg.e, unscored = j.unscored + agg.n - agg.s - agg.e,
              score_sum = j.score_sum + agg.total, batches = j.batches + evagg.b,
              last_event_id = COALESCE(evagg.last, j.last_event_id)
       FROM agg, evagg WHERE j.id = %(job)s)
SELECT 'job' AS kind, (SELECT count(*) FROM locked) AS o, NULL::bigint AS id,
       (SELECT array_agg(idx) FROM ins) AS ids
UNION ALL SELECT 'event', o, id, NULL FROM numbered
UNION ALL SELECT 'replay', o, NULL, ids::int[] FROM replay
UNION ALL SELECT 'notify', NULL, NULL, NULL FROM (SELECT pg_notify(%(channel)s,
    %(job)s || ':' || evagg.last) FROM evagg WHERE evagg.last IS NOT NULL
    AND EXISTS (SELECT 1 FROM locked)) AS note
"""


async def commit_one_job(conn: Conn, now: float, job_id: str, results: Sequence[ResultRow],
                         records: Sequence[str], events: Sequence[NewEvent],
                         datas: Sequence[str]) -> list[JobEvent]:
    """`store_commit` of one job's results and events without a status change, as one
    statement on an autocommit connection (see `_ONE_JOB`)."""
    params = {
        "job": job_id, "now": now, "channel": CHANNEL,
        "e_type": [e.type for e in events], "e_data": list(datas),
        "e_final": [e.final for e in events],
        "a_ord": [o for o, e in enumerate(events, 1) for _ in e.announces],
        "a_idx": [idx for e in events for idx in e.announces],
        "r_idx": [r.idx for r in results], "r_item": [r.item_id for r in results],
        "r_status": [r.status for r in results],
        "r_score": [None if r.score is None else float(r.score) for r in results],
        "r_record": list(records)}
    rows = await (await conn.execute(_ONE_JOB, params)).fetchall()
    ids: dict[int, int] = {}
    replayed: dict[str, set[int]] = defaultdict(set)
    placeholders: set[int] = set()
    for r in rows:
        if r["kind"] == "job":
            if not r["o"]:
                raise job_not_found(job_id)
            _warn_repeated(results, [{"job_id": job_id, "idx": i} for i in r["ids"] or []])
        elif r["kind"] == "event":
            ids[r["o"]] = r["id"]
        elif r["kind"] == "replay":
            placeholders.add(r["o"])
            replayed[job_id] |= set(r["ids"])
    stored = [JobEvent(job_id, -1, e.type, {}, e.final) if o in placeholders
              else JobEvent(job_id, ids[o], e.type, e.data, e.final)
              for o, e in enumerate(events, 1)]
    if placeholders:
        log.warning("job %s: %d event(s) announcing only announced results (a commit retried "
                    "after its answer was lost) not stored again", job_id, len(placeholders))
        stored = await _with_replayed(conn, stored, replayed)
    return stored
