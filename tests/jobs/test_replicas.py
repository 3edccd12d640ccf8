"""Runners of several replicas on one store (one SQLite file; the store contract runs the same
leases on PostgreSQL): each job runs on one replica, a cancel on another replica stops the work
where it runs, a clean stop hands the job over at once, and a dead replica's job is taken over
when its lease runs out, every item stored and announced once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from evalserve.jobs.models import JobStatus
from evalserve.jobs.service import JobService
from tests.jobs.helpers import batch_ids, collect, engine, items, running_service
from tests.waiting import wait_until


@contextlib.asynccontextmanager
async def replicas(tmp_path: Path, n: int, *, delay: float = 0.0,
                   **config: Any) -> AsyncIterator[list[JobService]]:
    """`n` started services on one database file, replicas `r0`..`r{n-1}`."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_service(
            tmp_path, engine(capacity=2, delay=delay), replica_id=f"r{i}", **config))
            for i in range(n)]


def graded(service: JobService) -> int:
    return len(service.engine.requests)


async def test_each_job_runs_on_one_replica(tmp_path: Path) -> None:
    async with replicas(tmp_path, 3, delay=0.01, max_concurrent_jobs=2) as services:
        subs = [await services[i % 3].submit(items(8)) for i in range(9)]
        for sub in subs:
            events = await collect(services[0], sub.job.id)
            assert events[-1].type == "complete"
            assert sorted(batch_ids(events)) == [f"A{i:03d}" for i in range(8)]
        jobs = [await services[1].get(s.job.id) for s in subs]
        counts = [graded(s) for s in services]
    assert sum(counts) == 9 * 8  # no item graded twice
    assert sum(1 for c in counts if c) >= 2  # the jobs spread over the replicas
    assert all((j.status, j.attempts) == (JobStatus.COMPLETED, 1) for j in jobs)


async def test_a_cancel_on_another_replica_stops_the_work(tmp_path: Path) -> None:
    async with replicas(tmp_path, 2, delay=0.05, job_lease_seconds=0.3) as (a, b):
        b.runner.leases.claim = _nothing(b.runner.leases.claim)  # b runs nothing
        sub = await a.submit(items(200))
        await wait_until(lambda: graded(a) >= 4, what="a grading the job")
        cancelled = await b.cancel(sub.job.id)
        assert cancelled.status is JobStatus.CANCELLED
        await wait_until(lambda: not a.runner._running, timeout=5,
                         what="a stopping the job cancelled on b")
        events = await collect(a, sub.job.id)
        job = await a.get(sub.job.id)
    assert events[-1].type == "cancelled"
    assert job.status is JobStatus.CANCELLED and graded(a) < 200


async def test_a_clean_stop_hands_the_job_over_at_once(tmp_path: Path) -> None:
    """Leases of a minute: the other replica takes the job long before it would expire."""
    async with replicas(tmp_path, 1, delay=0.02, job_lease_seconds=60) as (b,):
        async with replicas(tmp_path, 1, delay=0.02, job_lease_seconds=60) as (a,):
            a.runner.leases.replica = "ra"
            sub = await a.submit(items(60))
            await wait_until(lambda: graded(a) >= 6 and not b.runner._running,
                             what="a grading the job")
        before = graded(a)
        events = await collect(b, sub.job.id, timeout=15)
        job = await b.get(sub.job.id)
    assert events[-1].type == "complete" and job.completed == 60
    ids = batch_ids(events)
    assert sorted(ids) == [f"A{i:03d}" for i in range(60)]  # each announced once
    assert before + graded(b) >= 60 and graded(b) <= 60 - 6 + 2
    assert job.attempts == 1  # a handover is not an attempt


async def test_a_dead_replicas_job_is_taken_over_when_its_lease_runs_out(tmp_path: Path) -> None:
    async with replicas(tmp_path, 1, delay=0.02, job_lease_seconds=0.6) as (b,):
        async with replicas(tmp_path, 1, delay=0.02, job_lease_seconds=0.6) as (a,):
            a.runner.leases.replica = "ra"

            async def died(job_ids):  # noqa: ANN001, ANN202 - a dead process releases nothing
                return 0

            a.runner.leases.release = died
            sub = await a.submit(items(60))
            await wait_until(lambda: graded(a) >= 6, what="a grading the job")
        assert (await b.get(sub.job.id)).status is JobStatus.RUNNING
        events = await collect(b, sub.job.id, timeout=15)
        job = await b.get(sub.job.id)
    assert events[-1].type == "complete" and job.completed == 60
    assert sorted(batch_ids(events)) == [f"A{i:03d}" for i in range(60)]
    assert job.attempts == 2  # the reclaim after expiry counts


async def test_a_job_that_kills_every_replica_is_failed(tmp_path: Path) -> None:
    """MAX_JOB_ATTEMPTS=2: two replicas die running it; the third fails it."""
    job_id = ""
    for n in range(2):
        async with replicas(tmp_path, 1, delay=0.05, job_lease_seconds=0.3,
                            max_job_attempts=2) as (a,):
            a.runner.leases.replica = f"dead{n}"

            async def died(job_ids):  # noqa: ANN001, ANN202
                return 0

            a.runner.leases.release = died
            if not job_id:
                job_id = (await a.submit(items(100))).job.id
            await wait_until(lambda: bool(a.runner._running), what="the job running")
        await wait_until(_expired(tmp_path, job_id), what="the lease to run out")
    async with replicas(tmp_path, 1, job_lease_seconds=0.3, max_job_attempts=2) as (c,):
        events = await collect(c, job_id)
        job = await c.get(job_id)
    assert events[-1].type == "error"
    assert (job.status, job.attempts) == (JobStatus.FAILED, 2)
    assert job.error is not None and job.error["code"] == "too_many_attempts"


def _expired(tmp_path: Path, job_id: str):  # noqa: ANN202
    import sqlite3
    import time

    def check() -> bool:
        with contextlib.closing(sqlite3.connect(tmp_path / "jobs.db")) as conn:
            (until,) = conn.execute("SELECT lease_until FROM jobs WHERE id = ?",
                                    (job_id,)).fetchone()
        return until is not None and until < time.time()

    return check


async def test_active_jobs_count_every_replicas_jobs(tmp_path: Path) -> None:
    """`/health`'s count: a job queued on one replica is counted on the other within the
    cache's second (the count is read from the store, in the background)."""
    async with replicas(tmp_path, 2, delay=0.05, max_concurrent_jobs=1) as (a, b):
        b.runner.leases.claim = a.runner.leases.claim = _nothing(a.runner.leases.claim)
        subs = [await a.submit(items(5)) for _ in range(3)]
        assert a.active_jobs() == 3  # its own submissions at once
        await wait_until(lambda: b.active_jobs() == 3, timeout=5, what="b counting a's jobs")
        await b.cancel(subs[0].job.id)
        await wait_until(lambda: a.active_jobs() == 2, timeout=5, what="a seeing b's cancel")


def _nothing(claim):  # noqa: ANN001, ANN202
    async def none(job_ids, max_attempts):  # noqa: ANN001, ANN202
        return await claim([], max_attempts)

    return none
