"""The store contract, on both backends: jobs as created (options, rubric and items exactly
as given), listed newest first, filtered by status and owner, counted; kept across a close and
a reopen; a job id is unique."""

from __future__ import annotations

import pytest

from evalserve.errors import NotFoundError
from evalserve.jobs.models import Job, JobOptions, JobStatus
from evalserve.jobs.store import JobStore, NewEvent, StatusChange
from tests.jobs.contract.conftest import Backend
from tests.jobs.contract.rows import items, job, row


async def test_create_list_and_get(store: JobStore) -> None:
    await store.create_job(job("a", 1.0), [("i0", {"x": "é"}), ("i1", {"x": 2}), ("i2", {})])
    await store.create_job(job("b", 2.0), [("i0", {})] * 3)
    assert [j.id for j in await store.list_jobs()] == ["b", "a"]
    assert [j.id for j in await store.list_jobs(JobStatus.QUEUED, limit=1)] == ["b"]
    assert await store.list_jobs(JobStatus.RUNNING) == []
    got = await store.get_job("a")
    assert (got.total, got.status, got.rubric) == (3, JobStatus.QUEUED, {"name": "r"})
    pending = await store.pending_items("a", -1, 10)
    assert [(p.idx, p.item_id, p.data) for p in pending] == \
        [(0, "i0", {"x": "é"}), (1, "i1", {"x": 2}), (2, "i2", {})]
    assert await store.count_active() == 2
    with pytest.raises(NotFoundError, match="no job 'zz'"):
        await store.get_job("zz")


async def test_a_job_comes_back_exactly_as_stored(store: JobStore) -> None:
    """Options, rubric and item data round-trip unchanged: key order (exports and reports
    follow it), nesting, non-ASCII text, control characters and every number."""
    options = JobOptions(metrics=["rouge_l"], track={"experiment": "é"},
                         judges=[{"name": "j1", "model": None, "rubric_name": "r",
                                  "rubric": {"z": 1, "a": [1.5, None]}}],
                         aggregate="median", min_successful=1, samples=3, reducer="mode",
                         temperature=0.7, model="m", traceparent="00-" + "a" * 32 + "-" +
                         "b" * 16 + "-01")
    rubric = {"name": "r", "zeta": {"b": 2, "a": 1}, "scale": [0, 1, 2], "text": "Nota:\n\t✓"}
    data = {"z": "última", "a": {"y": [1, 2.25, -3e-7, 10**15]}, "nul": "a\x00b", "e": ""}
    stored = Job(id="a", status=JobStatus.QUEUED, rubric_name="r", rubric=rubric, total=1,
                 options=options, owner="key-1", created_at=1234567890.123456)
    await store.create_job(stored, [("i0", data)])
    got = await store.get_job("a")
    assert got == stored
    assert list(got.rubric) == ["name", "zeta", "scale", "text"]
    assert list(got.rubric["zeta"]) == ["b", "a"]
    [pending] = await store.pending_items("a", -1, 10)
    assert pending.data == data and list(pending.data) == ["z", "a", "nul", "e"]


async def test_owners_filter_lists_and_queue_counts(store: JobStore) -> None:
    await store.create_job(job("a", 1.0, owner="k1"), [("i0", {})])
    await store.create_job(job("b", 2.0, owner="k2"), [("i0", {})])
    await store.create_job(job("c", 3.0), [("i0", {})])
    await store.create_job(job("d", 4.0, owner="k1"), [("i0", {})])
    assert [j.id for j in await store.list_jobs(owner="k1")] == ["d", "a"]
    assert [j.id for j in await store.list_jobs(owner="k1", limit=1)] == ["d"]
    assert [j.id for j in await store.list_jobs()] == ["d", "c", "b", "a"]
    assert (await store.get_job("b")).owner == "k2"
    assert (await store.count_queued("k1"), await store.count_queued(None)) == (2, 1)
    assert await store.count_queued("nobody") == 0
    await store.commit(status=[StatusChange("d", JobStatus.RUNNING, started_at=5.0)])
    assert await store.count_queued("k1") == 1
    assert [j.id for j in await store.list_jobs(JobStatus.RUNNING, owner="k1")] == ["d"]
    assert await store.count_active() == 4


async def test_a_job_id_is_unique(store: JobStore) -> None:
    """Creating a job under an id that exists fails and changes nothing of the first."""
    await store.create_job(job("a", 1.0, total=2), items(2))
    with pytest.raises(Exception):  # noqa: B017 - each backend's own integrity error
        await store.create_job(job("a", 2.0, total=1), [("other", {"x": 1})])
    got = await store.get_job("a")
    assert (got.total, got.created_at) == (2, 1.0)
    assert [p.item_id for p in await store.pending_items("a", -1, 10)] == ["i0", "i1"]
    await store.create_job(job("b", 3.0), items(3))  # the store is usable after the failure
    assert [j.id for j in await store.list_jobs()] == ["b", "a"]


async def test_everything_is_kept_across_a_close_and_a_reopen(backend: Backend) -> None:
    """What one store committed, another opened on the same file or database (a restarted
    process) reads back whole; opening an existing schema changes nothing."""
    first = backend.make()
    await first.open()
    await first.create_job(job("a", 1.0, total=2), items(2))
    await first.commit([row("a", 0, 4)], [NewEvent("a", "batch_complete", {"n": 1},
                                                    announces=[0])],
                       [StatusChange("a", JobStatus.RUNNING, started_at=2.0)])
    await first.close()
    second = backend.make()
    await second.open()
    try:
        a = await second.get_job("a")
        assert (a.status, a.completed, a.scored, a.batches, a.attempts, a.started_at) == \
            (JobStatus.RUNNING, 1, 1, 1, 1, 2.0)
        assert await second.records("a") == [(0, {"id": "i0", "score": 4})]
        assert [(e.id, e.data) for e in await second.events_after("a", 0)] == [(1, {"n": 1})]
        assert [p.idx for p in await second.pending_items("a", -1, 10)] == [1]
        [event] = await second.commit(events=[NewEvent("a", "x", {})])
        assert event.id == 2
    finally:
        await second.close()
