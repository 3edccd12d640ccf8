"""The store contract, on both backends: which job runs next (interrupted ones first, then
owners in turn, then by age), which jobs are runnable (queued ones, and running ones whose
lease ran out), and the start attempts that keep a crash-looping job from being resumed for
ever."""

from __future__ import annotations

from evalserve.jobs.models import JobStatus
from evalserve.jobs.store import JobStore, StatusChange
from tests.jobs.contract.rows import job

LEASE = 30.0


async def test_runnable_order_puts_interrupted_jobs_first(store: JobStore) -> None:
    for name, created in (("new", 3.0), ("old", 1.0), ("interrupted", 2.0)):
        await store.create_job(job(name, created), [("i0", {})])
    claims = await store.claim_jobs("a", 1, lease_seconds=LEASE, among=["interrupted"], now=100)
    assert [j.id for j in claims.jobs] == ["interrupted"]
    assert [j.id for j in await store.runnable_jobs(10, now=100)] == ["old", "new"]
    # Its replica died: once the lease ran out it is runnable again, before the others.
    assert [j.id for j in await store.runnable_jobs(10, now=100 + LEASE + 1)] == \
        ["interrupted", "old", "new"]
    assert [j.id for j in await store.runnable_jobs(2, now=100 + LEASE + 1)] == \
        ["interrupted", "old"]


async def test_runnable_jobs_take_owners_in_turn(store: JobStore) -> None:
    """Fair scheduling: one owner's many queued jobs do not all go before another owner's."""
    for name, created, owner in (("a1", 1.0, "a"), ("a2", 2.0, "a"), ("a3", 3.0, "a"),
                                 ("b1", 4.0, "b"), ("b2", 5.0, "b"), ("solo", 6.0, None)):
        await store.create_job(job(name, created, owner=owner), [("i0", {})])
    assert [j.id for j in await store.runnable_jobs(10)] == \
        ["a1", "b1", "solo", "a2", "b2", "a3"]


async def test_finished_and_leased_jobs_are_not_runnable(store: JobStore) -> None:
    for name, created in (("q", 1.0), ("leased", 2.0), ("done", 3.0), ("unleased", 4.0)):
        await store.create_job(job(name, created), [("i0", {})])
    await store.claim_jobs("a", 1, lease_seconds=LEASE, among=["leased"], now=10)
    await store.commit(status=[StatusChange("done", JobStatus.COMPLETED, finished_at=2.0)])
    # Running without a lease (left by an older version, or a commit): claimable.
    await store.commit(status=[StatusChange("unleased", JobStatus.RUNNING, started_at=1.0)])
    assert [j.id for j in await store.runnable_jobs(10, now=11)] == ["unleased", "q"]
    assert await store.count_active() == 3


async def test_starts_are_counted_and_poisoned_jobs_are_claimed_to_be_failed(
        store: JobStore) -> None:
    """A job whose replica died while running it MAX_JOB_ATTEMPTS times is claimed as
    poisoned (to be failed), not run again: it may be what kills replicas."""
    await store.create_job(job("loop", 1.0), [("i0", {})])
    now = 0.0
    for attempt in (1, 2, 3):  # claimed, then its replica died: reclaimed once it expired
        claims = await store.claim_jobs(f"r{attempt}", 5, lease_seconds=LEASE, max_attempts=3,
                                        now=now)
        assert [(j.id, j.attempts) for j in claims.jobs] == [("loop", attempt)]
        assert claims.poisoned == []
        now += LEASE + 1
    claims = await store.claim_jobs("r4", 5, lease_seconds=LEASE, max_attempts=3, now=now)
    assert claims.jobs == [] and [(j.id, j.attempts) for j in claims.poisoned] == [("loop", 3)]
    assert claims.poisoned[0].status is JobStatus.RUNNING
    # r4 holds it now (to fail it): nobody else claims it meanwhile.
    assert (await store.claim_jobs("r5", 5, lease_seconds=LEASE, max_attempts=3,
                                   now=now + 1)).poisoned == []
    # Without a limit it runs again, however often it was started.
    now += 2 * LEASE
    claims = await store.claim_jobs("r6", 5, lease_seconds=LEASE, now=now)
    assert [(j.id, j.attempts) for j in claims.jobs] == [("loop", 4)]
