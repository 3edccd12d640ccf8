"""The store contract, on both backends: which queued job runs next (interrupted ones first,
then owners in turn, then by age), what a start-up requeues, and the start attempts that
keep a crash-looping job from being resumed for ever."""

from __future__ import annotations

from evalserve.jobs.models import JobStatus
from evalserve.jobs.store import JobStore, StatusChange
from tests.jobs.contract.rows import job


async def test_requeue_and_runnable_order(store: JobStore) -> None:
    for name, created in (("new", 3.0), ("old", 1.0), ("interrupted", 2.0)):
        await store.create_job(job(name, created), [("i0", {})])
    await store.commit(status=[StatusChange("interrupted", JobStatus.RUNNING, started_at=9.0)])
    assert await store.requeue_interrupted() == (1, [])
    assert [j.id for j in await store.runnable_jobs(10)] == ["interrupted", "old", "new"]
    assert [j.id for j in await store.runnable_jobs(2)] == ["interrupted", "old"]
    assert await store.requeue_interrupted() == (0, [])


async def test_runnable_jobs_take_owners_in_turn(store: JobStore) -> None:
    """Fair scheduling: one owner's many queued jobs do not all go before another owner's."""
    for name, created, owner in (("a1", 1.0, "a"), ("a2", 2.0, "a"), ("a3", 3.0, "a"),
                                 ("b1", 4.0, "b"), ("b2", 5.0, "b"), ("solo", 6.0, None)):
        await store.create_job(job(name, created, owner=owner), [("i0", {})])
    assert [j.id for j in await store.runnable_jobs(10)] == \
        ["a1", "b1", "solo", "a2", "b2", "a3"]


async def test_only_queued_jobs_are_runnable(store: JobStore) -> None:
    for name, created in (("q", 1.0), ("r", 2.0), ("done", 3.0)):
        await store.create_job(job(name, created), [("i0", {})])
    await store.commit(status=[StatusChange("r", JobStatus.RUNNING, started_at=1.0),
                               StatusChange("done", JobStatus.COMPLETED, finished_at=2.0)])
    assert [j.id for j in await store.runnable_jobs(10)] == ["q"]
    assert await store.count_active() == 2


async def test_starts_are_counted_and_poisoned_jobs_are_not_requeued(store: JobStore) -> None:
    """A job left running by MAX_JOB_ATTEMPTS crashes is handed back, not requeued (it was
    resumed for ever: a crash loop)."""
    await store.create_job(job("loop", 1.0), [("i0", {})])
    await store.create_job(job("once", 2.0), [("i0", {})])
    for _ in range(2):  # started, then the process died: resumed at the next start
        await store.commit(status=[StatusChange("loop", JobStatus.RUNNING, started_at=1.0)])
        assert await store.requeue_interrupted(3) == (1, [])
    await store.commit(status=[StatusChange("loop", JobStatus.RUNNING, started_at=1.0)])
    await store.commit(status=[StatusChange("once", JobStatus.RUNNING, started_at=1.0)])
    assert (await store.get_job("loop")).attempts == 3
    requeued, poisoned = await store.requeue_interrupted(3)
    assert requeued == 1 and [j.id for j in poisoned] == ["loop"]
    assert poisoned[0].status is JobStatus.RUNNING and poisoned[0].attempts == 3
    assert (await store.get_job("loop")).status is JobStatus.RUNNING
    assert (await store.get_job("once")).status is JobStatus.QUEUED
    # Without a limit every running job goes back, however often it was started.
    assert await store.requeue_interrupted() == (1, [])
    assert (await store.get_job("loop")).status is JobStatus.QUEUED
