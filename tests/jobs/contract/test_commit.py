"""The store contract, on both backends: one `commit` stores results (each once, counted
once), numbers events per job, marks what they announce and changes statuses, all in one
transaction; reports go with the job's end; reads page by index and by event id."""

from __future__ import annotations

import asyncio

import pytest

from evalserve.errors import NotFoundError
from evalserve.jobs.models import JobStatus, ResultRow
from evalserve.jobs.store import JobStore, NewEvent, StatusChange
from tests.jobs.contract.conftest import Backend
from tests.jobs.contract.rows import items, job, row


async def test_commit_counts_results_once_and_numbers_events(store: JobStore) -> None:
    await store.create_job(job("a", 1.0), items(3))
    await store.create_job(job("b", 1.0), items(3))
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


async def test_a_result_given_twice_in_one_commit_is_stored_and_counted_once(
        store: JobStore) -> None:
    await store.create_job(job("a", 1.0, total=2), items(2))
    await store.commit([row("a", 0, 4), row("a", 0, 1), row("a", 1, 2)])
    a = await store.get_job("a")
    assert (a.completed, a.scored, a.score_sum) == (2, 2, 6.0)
    assert await store.records("a") == [(0, {"id": "i0", "score": 4}),
                                         (1, {"id": "i1", "score": 2})]


async def test_a_failing_commit_stores_nothing(store: JobStore) -> None:
    await store.create_job(job("a", 1.0), [("i0", {})])
    with pytest.raises(TypeError):
        await store.commit([row("a", 0)], [NewEvent("a", "e", {"bad": object()})])
    assert (await store.get_job("a")).completed == 0
    assert await store.events_after("a", 0) == []
    stored = await store.commit([row("a", 0)], [NewEvent("a", "e", {})])
    assert [e.id for e in stored] == [1]


async def test_one_commit_spans_several_jobs(store: JobStore) -> None:
    await store.create_job(job("a", 1.0, total=2), items(2))
    await store.create_job(job("b", 2.0, total=2), items(2))
    stored = await store.commit(
        [row("b", 0, 5), row("a", 0, None, "error"), row("a", 1, 1), row("b", 1, None)],
        [NewEvent("b", "batch_complete", {"b": 1}, announces=[0, 1]),
         NewEvent("a", "batch_complete", {"a": 1}, announces=[0]),
         NewEvent("a", "batch_complete", {"a": 2}, announces=[1])],
        [StatusChange("a", JobStatus.COMPLETED, finished_at=3.0),
         StatusChange("b", JobStatus.FAILED, finished_at=4.0,
                      error={"message": "boom", "code": "internal_error"})])
    assert [(e.job_id, e.id, e.data) for e in stored] == \
        [("b", 1, {"b": 1}), ("a", 1, {"a": 1}), ("a", 2, {"a": 2})]
    a, b = await store.get_job("a"), await store.get_job("b")
    assert (a.completed, a.errors, a.scored, a.batches, a.status) == \
        (2, 1, 1, 2, JobStatus.COMPLETED)
    assert (b.completed, b.scored, b.unscored, b.batches, b.status, b.error) == \
        (2, 1, 1, 1, JobStatus.FAILED, {"message": "boom", "code": "internal_error"})
    assert await store.unannounced_results("a") == []
    assert await store.unannounced_results("b") == []


async def test_status_changes_keep_the_first_start_and_count_attempts(store: JobStore) -> None:
    """`started_at` is the first start; a change without a finish, error or report keeps the
    stored one; a start is an attempt, a clean hand-back is not."""
    await store.create_job(job("a", 1.0), items(1))
    await store.commit(status=[StatusChange("a", JobStatus.RUNNING, started_at=5.0)])
    await store.commit(status=[StatusChange("a", JobStatus.QUEUED, handed_back=True)])
    a = await store.get_job("a")
    assert (a.status, a.started_at, a.attempts) == (JobStatus.QUEUED, 5.0, 0)
    await store.commit(status=[StatusChange("a", JobStatus.RUNNING, started_at=9.0)])
    await store.commit(status=[StatusChange("a", JobStatus.FAILED, finished_at=10.0,
                                            error={"message": "x"})])
    await store.commit(status=[StatusChange("a", JobStatus.FAILED)])
    a = await store.get_job("a")
    assert (a.status, a.started_at, a.finished_at, a.error, a.attempts) == \
        (JobStatus.FAILED, 5.0, 10.0, {"message": "x"}, 1)
    assert a.elapsed(now=99.0) == 5.0


async def test_an_event_id_beyond_int64_matches_nothing(store: JobStore) -> None:
    """`last_event_id=99999999999999999999` overflowed SQLite's integer binding inside the
    SSE generator (OverflowError); an id past every event has no events after it."""
    await store.create_job(job("a", 1.0), [("i0", {})])
    await store.commit(events=[NewEvent("a", "x", {})])
    assert await store.events_after("a", 99999999999999999999) == []
    assert [e.id for e in await store.events_after("a", -5)] == [1]


async def test_reads_page_by_index_and_by_event_id(store: JobStore) -> None:
    await store.create_job(job("a", 1.0, total=6), items(6))
    await store.commit([row("a", i, i) for i in (4, 0, 2)],
                       [NewEvent("a", "e", {"k": i}, final=i == 4) for i in range(5)])
    assert [idx for idx, _ in await store.records("a", -1, 2)] == [0, 2]
    assert [idx for idx, _ in await store.records("a", 2)] == [4]
    assert [p.idx for p in await store.pending_items("a", 1, 2)] == [3, 5]
    assert [p.idx for p in await store.pending_items("a", -1, 2)] == [1, 3]
    events = await store.events_after("a", 1, limit=2)
    assert [(e.id, e.data, e.final) for e in events] == [(2, {"k": 1}, False),
                                                          (3, {"k": 2}, False)]
    assert [e.final for e in await store.events_after("a", 3)] == [False, True]
    assert await store.records("zz") == [] and await store.events_after("zz", 0) == []


async def test_unannounced_results_are_those_no_event_carries(store: JobStore) -> None:
    await store.create_job(job("a", 1.0, total=3), items(3))
    await store.commit([row("a", 2, 1), row("a", 0, None), row("a", 1, 5)],
                       [NewEvent("a", "batch_complete", {}, announces=[1])])
    assert await store.unannounced_results("a") == [
        ResultRow("a", 0, "i0", "unscored", None, {"id": "i0", "score": None}),
        ResultRow("a", 2, "i2", "scored", 1, {"id": "i2", "score": 1})]
    await store.commit(events=[NewEvent("a", "batch_complete", {}, announces=[0, 2])])
    assert await store.unannounced_results("a") == []


async def test_the_report_is_stored_with_the_end_kept_and_cleared_by_a_retry(
        store: JobStore) -> None:
    """The report goes in the same commit as the job's end; a later status change without
    one keeps it; a retry (the job graded again) clears it until the job completes again."""
    report = {"agreement": {"score": {"qwk": 0.5, "labels": ["é"]}}}
    await store.create_job(job("a", 1.0, total=2), [("i0", {}), ("i1", {})])
    assert await store.get_report("a") is None
    await store.commit([row("a", 0, 4), row("a", 1, None, "error")],
                       status=[StatusChange("a", JobStatus.COMPLETED, finished_at=5.0,
                                            report=report)])
    assert await store.get_report("a") == report
    await store.commit(status=[StatusChange("a", JobStatus.COMPLETED)])
    assert await store.get_report("a") == report
    await store.retry_items("a")
    assert await store.get_report("a") is None
    with pytest.raises(NotFoundError, match="no job 'zz'"):
        await store.get_report("zz")


async def test_concurrent_commits_of_two_stores_number_each_event_once(
        backend: Backend) -> None:
    """Two stores on one file or database (two processes) committing at once: every result
    counted once, event ids 1..n with none repeated, whichever commit came first."""
    stores = [backend.make(), backend.make()]
    for s in stores:
        await s.open()
    try:
        await stores[0].create_job(job("a", 1.0, total=40), items(40))

        async def one(i: int) -> list[int]:
            stored = await stores[i % 2].commit(
                [row("a", i, i % 5)], [NewEvent("a", "batch_complete", {"i": i},
                                                announces=[i])])
            return [e.id for e in stored]

        ids = [i for got in await asyncio.gather(*(one(i) for i in range(40))) for i in got]
        assert sorted(ids) == list(range(1, 41))
        a = await stores[1].get_job("a")
        assert (a.completed, a.batches, a.score_sum) == (40, 40, float(sum(i % 5
                                                                           for i in range(40))))
        assert await stores[0].unannounced_results("a") == []
        events = await stores[0].events_after("a", 0)
        assert sorted(e.data["i"] for e in events) == list(range(40))
    finally:
        for s in stores:
            await s.close()
