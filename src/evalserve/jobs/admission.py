"""Which queued jobs start now: `MAX_CONCURRENT_JOBS`, without letting one owner's many jobs
keep another owner's job waiting.

Up to the limit, jobs start in the store's order (interrupted ones first, then round-robin
across owners), owners running fewer jobs first. Beyond the limit, an owner that has queued
work and nothing running still gets one job started: the limit bounds how many jobs any one
owner runs at once, not whether other callers run at all. Running jobs share the engine's
slots fairly (`jobs/slots.py`), so an extra running job costs a task, not engine time. At most
`limit + owners` jobs run; owners are API keys (bounded by configuration), and single-user
mode has one owner, so there the limit is exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from evalserve.jobs.models import Job

__all__ = ["admit"]


def admit(candidates: Sequence[Job], running: Iterable[Job], limit: int) -> list[Job]:
    """The jobs of `candidates` (queued, in the store's order) to start now, given the jobs
    `running` and the `limit` of concurrent jobs."""
    running = list(running)
    busy = {j.id for j in running}
    per_owner = Counter(j.owner for j in running)
    total = len(running)
    pool = [j for j in candidates if j.id not in busy]
    chosen: list[Job] = []
    while pool:
        pick = min(pool, key=lambda j: per_owner[j.owner])  # the first of the least busy
        if total >= limit and per_owner[pick.owner] > 0:
            break
        pool.remove(pick)
        chosen.append(pick)
        per_owner[pick.owner] += 1
        total += 1
    return chosen
