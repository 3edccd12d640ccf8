"""SQLiteJobStore: atomic commits, per-job event ids, pending items, expiry, requeue."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.errors import NotFoundError
from evalserve.jobs.models import Job, JobStatus, ResultRow
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.jobs.store import NewEvent, StatusChange


def job(job_id: str, created: float, total: int = 3) -> Job:
    return Job(id=job_id, status=JobStatus.QUEUED, rubric_name="r", rubric={"name": "r"},
               total=total, created_at=created)


def row(job_id: str, idx: int, score: float | None = 3) -> ResultRow:
    return ResultRow(job_id, idx, f"i{idx}", "scored" if score is not None else "unscored",
                     score, {"id": f"i{idx}", "score": score})


@pytest.fixture
async def store(tmp_path: Path):  # noqa: ANN201
    s = SQLiteJobStore(tmp_path / "sub" / "jobs.db")
    await s.open()
    yield s
    await s.close()


async def test_create_list_and_get(store: SQLiteJobStore) -> None:
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


async def test_commit_counts_results_once_and_numbers_events(store: SQLiteJobStore) -> None:
    await store.create_job(job("a", 1.0), [(f"i{i}", {}) for i in range(3)])
    await store.create_job(job("b", 1.0), [(f"i{i}", {}) for i in range(3)])
    first = await store.commit([row("a", 0, 4), row("a", 1, None)],
                               [NewEvent("a", "batch_complete", {"n": 1}, announces=[0])],
                               [StatusChange("a", JobStatus.RUNNING, started_at=5.0)])
    again = await store.commit([row("a", 0, 1)], [NewEvent("a", "x", {}),
                                                   NewEvent("b", "y", {})])
    assert [(e.job_id, e.id) for e in first + again] == [("a", 1), ("a", 2), ("b", 1)]
    a = await store.get_job("a")
    assert (a.completed, a.scored, a.unscored, a.mean_score) == (2, 1, 1, 4.0)
    assert (a.status, a.started_at, a.batches) == (JobStatus.RUNNING, 5.0, 1)
    assert [p.idx for p in await store.pending_items("a", -1, 10)] == [2]
    assert [r.idx for r in await store.unannounced_results("a")] == [1]
    assert [e.id for e in await store.events_after("a", 1)] == [2]
    assert [idx for idx, _ in await store.records("a")] == [0, 1]
    assert (await store.records("a"))[0][1] == {"id": "i0", "score": 4}


async def test_a_failing_commit_stores_nothing(store: SQLiteJobStore) -> None:
    await store.create_job(job("a", 1.0), [("i0", {})])
    with pytest.raises(TypeError):
        await store.commit([row("a", 0)], [NewEvent("a", "e", {"bad": object()})])
    assert (await store.get_job("a")).completed == 0
    assert await store.events_after("a", 0) == []


async def test_requeue_and_runnable_order(store: SQLiteJobStore) -> None:
    for name, created in (("new", 3.0), ("old", 1.0), ("interrupted", 2.0)):
        await store.create_job(job(name, created), [("i0", {})])
    await store.commit(status=[StatusChange("interrupted", JobStatus.RUNNING, started_at=9.0)])
    assert await store.requeue_interrupted() == 1
    assert [j.id for j in await store.runnable_jobs(10)] == ["interrupted", "old", "new"]


async def test_delete_expired_removes_everything_of_old_finished_jobs(
        store: SQLiteJobStore) -> None:
    await store.create_job(job("done", 1.0), [("i0", {})])
    await store.create_job(job("live", 1.0), [("i0", {})])
    await store.commit([row("done", 0)], [NewEvent("done", "complete", {}, final=True)],
                       [StatusChange("done", JobStatus.COMPLETED, finished_at=10.0)])
    assert await store.delete_expired(10.0) == []
    assert await store.delete_expired(11.0) == ["done"]
    with pytest.raises(NotFoundError):
        await store.get_job("done")
    assert await store.records("done") == [] and await store.events_after("done", 0) == []
    assert (await store.get_job("live")).status is JobStatus.QUEUED
