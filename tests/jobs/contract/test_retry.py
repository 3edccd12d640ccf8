"""The store contract, on both backends: a finished job's error (and unscored) items graded
again: their results deleted, the counters recomputed, the job queued afresh, and its earlier
final events no longer ending streams."""

from __future__ import annotations

import pytest

from evalserve.errors import ConflictError, NotFoundError
from evalserve.jobs.models import JobStatus
from evalserve.jobs.store import JobStore, NewEvent, StatusChange
from tests.jobs.contract.rows import items, job, row


async def test_error_items_are_counted_apart_and_retried_once(store: JobStore) -> None:
    await store.create_job(job("a", 1.0, total=4), items(4))
    await store.commit([row("a", 0, 4), row("a", 1, None), row("a", 2, None, "error"),
                        row("a", 3, 2)], [NewEvent("a", "complete", {}, final=True)],
                       [StatusChange("a", JobStatus.COMPLETED, finished_at=5.0)])
    a = await store.get_job("a")
    assert (a.completed, a.scored, a.unscored, a.errors) == (4, 2, 1, 1)
    assert await store.retry_items("a") == 1
    a = await store.get_job("a")
    assert (a.status, a.finished_at, a.completed, a.scored, a.unscored, a.errors,
            a.mean_score) == (JobStatus.QUEUED, None, 3, 2, 1, 0, 3.0)
    assert [p.idx for p in await store.pending_items("a", -1, 10)] == [2]
    assert [e.final for e in await store.events_after("a", 0)] == [False]
    with pytest.raises(ConflictError, match="only a finished job"):
        await store.retry_items("a")
    await store.commit([row("a", 2, 5)], status=[StatusChange("a", JobStatus.COMPLETED,
                                                              finished_at=6.0)])
    assert await store.retry_items("a", unscored=True) == 1
    assert [p.idx for p in await store.pending_items("a", -1, 10)] == [1]
    await store.commit(status=[StatusChange("a", JobStatus.COMPLETED, finished_at=7.0)])
    with pytest.raises(ConflictError, match="no error items"):
        await store.retry_items("a")
    with pytest.raises(NotFoundError):
        await store.retry_items("zz")


async def test_a_retry_clears_the_error_and_the_attempts_and_keeps_numbering_events(
        store: JobStore) -> None:
    await store.create_job(job("a", 1.0, total=2), items(2))
    await store.commit(status=[StatusChange("a", JobStatus.RUNNING, started_at=2.0)])
    await store.commit([row("a", 0, None, "error"), row("a", 1, None, "error")],
                       [NewEvent("a", "error", {"status": "failed"}, final=True)],
                       [StatusChange("a", JobStatus.FAILED, finished_at=3.0,
                                     error={"message": "boom"})])
    assert await store.retry_items("a", unscored=True) == 2
    a = await store.get_job("a")
    assert (a.status, a.error, a.attempts, a.completed, a.errors, a.score_sum) == \
        (JobStatus.QUEUED, None, 0, 0, 0, 0.0)
    assert a.started_at == 2.0  # the first start stays: elapsed covers the whole job
    [event] = await store.commit(events=[NewEvent("a", "batch_complete", {})])
    assert event.id == 2



async def test_a_job_without_error_or_unscored_items_has_nothing_to_retry(
        store: JobStore) -> None:
    await store.create_job(job("clean", 1.0, total=1), items(1))
    await store.commit([row("clean", 0, 3)],
                       status=[StatusChange("clean", JobStatus.COMPLETED, finished_at=2.0)])
    with pytest.raises(ConflictError, match="no error or unscored items"):
        await store.retry_items("clean", unscored=True)
    clean = await store.get_job("clean")
    assert (clean.status, clean.completed, clean.finished_at) == (JobStatus.COMPLETED, 1, 2.0)
