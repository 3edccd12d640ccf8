"""The store contract, on both backends: finished jobs past their time are deleted with
their items, results and events; other jobs are kept."""

from __future__ import annotations

import pytest

from evalserve.errors import NotFoundError
from evalserve.jobs.models import JobStatus
from evalserve.jobs.store import JobStore, NewEvent, StatusChange
from tests.jobs.contract.rows import items, job, row


async def test_delete_expired_removes_everything_of_old_finished_jobs(store: JobStore) -> None:
    await store.create_job(job("done", 1.0), [("i0", {})])
    await store.create_job(job("live", 1.0), [("i0", {})])
    await store.commit([row("done", 0)], [NewEvent("done", "complete", {}, final=True)],
                       [StatusChange("done", JobStatus.COMPLETED, finished_at=10.0)])
    assert await store.delete_expired(10.0) == []
    assert await store.delete_expired(11.0) == ["done"]
    with pytest.raises(NotFoundError):
        await store.get_job("done")
    assert await store.records("done") == [] and await store.events_after("done", 0) == []
    assert await store.pending_items("done", -1, 10) == []
    assert (await store.get_job("live")).status is JobStatus.QUEUED


async def test_every_finished_status_expires_and_running_jobs_never_do(store: JobStore) -> None:
    ends = {"c": JobStatus.COMPLETED, "x": JobStatus.CANCELLED, "f": JobStatus.FAILED}
    for i, (name, end) in enumerate(ends.items()):
        await store.create_job(job(name, float(i)), items(2))
        await store.commit([row(name, 0)], status=[StatusChange(name, end, finished_at=5.0)])
    await store.create_job(job("r", 9.0), items(1))
    await store.commit(status=[StatusChange("r", JobStatus.RUNNING, started_at=1.0)])
    assert sorted(await store.delete_expired(6.0)) == ["c", "f", "x"]
    assert [j.id for j in await store.list_jobs()] == ["r"]
    assert await store.delete_expired(1e12) == []
    # The ids are free again: a new job may take one.
    await store.create_job(job("c", 20.0), items(1))
    assert (await store.get_job("c")).completed == 0
