"""The store contract of job leases, on both backends (a fake clock: every call is given its
`now`): a claim takes queued jobs and expired ones, once; renewals keep a lease and report the
jobs lost (cancelled, deleted, taken over); a release hands a job back at once without counting
an attempt; two stores on one database racing for the same jobs claim each job once."""

from __future__ import annotations

import asyncio

from evalserve.jobs.models import JobStatus
from evalserve.jobs.store import JobStore, StatusChange
from tests.jobs.contract.conftest import Backend
from tests.jobs.contract.rows import job

LEASE = 30.0


async def test_a_claim_takes_the_lease_and_starts_the_job(store: JobStore) -> None:
    for name, created in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        await store.create_job(job(name, created), [("i0", {})])
    claims = await store.claim_jobs("r1", 2, lease_seconds=LEASE, now=50.0)
    assert [(j.id, j.status, j.attempts, j.started_at) for j in claims.jobs] == \
        [("a", JobStatus.RUNNING, 1, 50.0), ("b", JobStatus.RUNNING, 1, 50.0)]
    # Held: another replica gets only what is left, and nothing while the lease lasts.
    assert [j.id for j in (await store.claim_jobs("r2", 5, lease_seconds=LEASE,
                                                  now=60.0)).jobs] == ["c"]
    assert (await store.claim_jobs("r3", 5, lease_seconds=LEASE, now=79.0)).jobs == []
    assert (await store.get_job("a")).status is JobStatus.RUNNING


async def test_a_claim_among_given_jobs_takes_only_those(store: JobStore) -> None:
    for name, created in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        await store.create_job(job(name, created), [("i0", {})])
    claims = await store.claim_jobs("r1", 5, lease_seconds=LEASE, among=["c", "a"], now=1.0)
    assert [j.id for j in claims.jobs] == ["c", "a"]
    assert (await store.claim_jobs("r1", 5, lease_seconds=LEASE, among=[], now=1.0)).jobs == []
    assert (await store.get_job("b")).status is JobStatus.QUEUED


async def test_renewal_keeps_the_lease_past_its_first_expiry(store: JobStore) -> None:
    await store.create_job(job("a", 1.0), [("i0", {})])
    await store.claim_jobs("r1", 1, lease_seconds=LEASE, now=0.0)
    for now in (10.0, 20.0, 30.0, 40.0):
        assert await store.renew_leases("r1", ["a"], lease_seconds=LEASE, now=now) == []
    # Without the renewals it would have expired at 30: still held at 69.
    assert (await store.claim_jobs("r2", 1, lease_seconds=LEASE, now=69.0)).jobs == []
    taken = await store.claim_jobs("r2", 1, lease_seconds=LEASE, now=71.0)
    assert [(j.id, j.attempts) for j in taken.jobs] == [("a", 2)]  # a reclaim counts


async def test_renewal_reports_jobs_taken_over_cancelled_or_deleted(store: JobStore) -> None:
    for name in ("taken", "cancelled", "kept", "gone"):
        await store.create_job(job(name, 1.0), [("i0", {})])
    await store.claim_jobs("r1", 5, lease_seconds=LEASE, now=0.0)
    await store.claim_jobs("r2", 5, lease_seconds=LEASE, among=["taken"], now=LEASE + 1)
    await store.commit(status=[StatusChange("cancelled", JobStatus.CANCELLED,
                                            finished_at=100.0),
                               StatusChange("gone", JobStatus.FAILED, finished_at=1.0)])
    assert await store.delete_expired(2.0) == ["gone"]
    lost = await store.renew_leases("r1", ["taken", "cancelled", "kept", "gone", "never"],
                                    lease_seconds=LEASE, now=LEASE + 2)
    # "kept" expired too but nobody took it: r1 still holds it.
    assert sorted(lost) == ["cancelled", "gone", "never", "taken"]
    assert await store.renew_leases("r2", ["taken"], lease_seconds=LEASE, now=LEASE + 2) == []


async def test_a_release_hands_the_job_back_at_once_without_an_attempt(store: JobStore) -> None:
    await store.create_job(job("a", 1.0), [("i0", {})])
    await store.create_job(job("b", 2.0), [("i0", {})])
    await store.claim_jobs("r1", 2, lease_seconds=LEASE, now=0.0)
    assert await store.release_leases("r2", ["a", "b"]) == 0  # not r2's
    assert await store.release_leases("r1", ["a"]) == 1
    a = await store.get_job("a")
    assert (a.status, a.attempts, a.started_at) == (JobStatus.QUEUED, 0, 0.0)
    # Taken by another replica long before the lease would have run out.
    claims = await store.claim_jobs("r2", 5, lease_seconds=LEASE, now=1.0)
    assert [(j.id, j.attempts) for j in claims.jobs] == [("a", 1)]
    assert await store.renew_leases("r1", ["a", "b"], lease_seconds=LEASE, now=2.0) == ["a"]


async def test_an_end_clears_the_lease(store: JobStore) -> None:
    await store.create_job(job("a", 1.0), [("i0", {})])
    await store.claim_jobs("r1", 1, lease_seconds=LEASE, now=0.0)
    await store.commit(status=[StatusChange("a", JobStatus.COMPLETED, finished_at=5.0)])
    assert await store.release_leases("r1", ["a"]) == 0
    assert await store.renew_leases("r1", ["a"], lease_seconds=LEASE, now=6.0) == ["a"]
    assert (await store.get_job("a")).status is JobStatus.COMPLETED


async def test_racing_stores_claim_each_job_once(backend: Backend, store: JobStore) -> None:
    """Four stores on one database (as four replicas), each claiming in small steps while
    the others do: every job is claimed by exactly one of them."""
    jobs = [f"j{n:02d}" for n in range(40)]
    for n, job_id in enumerate(jobs):
        await store.create_job(job(job_id, float(n)), [("i0", {})])
    others = [backend.make() for _ in range(3)]
    for other in others:
        await other.open()
    try:
        async def claimer(name: str, s: JobStore) -> list[str]:
            got: list[str] = []
            while True:
                claims = await s.claim_jobs(name, 3, lease_seconds=LEASE)
                if not claims.jobs and not await s.runnable_jobs(1):
                    return got
                got += [j.id for j in claims.jobs]
                await asyncio.sleep(0)

        claimed = await asyncio.gather(*(claimer(f"r{n}", s)
                                         for n, s in enumerate([store, *others])))
    finally:
        for other in others:
            await other.close()
    every = [job_id for got in claimed for job_id in got]
    assert sorted(every) == jobs  # each once, none left
    assert [(await store.get_job(j)).attempts for j in jobs] == [1] * len(jobs)
