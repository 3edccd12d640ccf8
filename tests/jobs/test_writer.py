"""ResultWriter and JobBatches: group commits, batch events stored with their results and
published only once stored, failures handed to the waiting items, a writer that survives them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from evalserve.jobs.events import EventBus
from evalserve.jobs.models import Job, JobEvent, JobStatus, ResultRow
from evalserve.jobs.progress import ProgressTracker
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.jobs.store import NewEvent, StatusChange
from evalserve.jobs.writer import JobBatches, ResultWriter


class CountingStore(SQLiteJobStore):
    """The real SQLite store, counting commits; `fail_next` makes the next commit raise."""

    commits: list[int]
    fail_next = False

    async def commit(self, results: Sequence[ResultRow] = (), events: Sequence[NewEvent] = (),
                     status: Sequence[StatusChange] = ()) -> list[JobEvent]:
        self.commits.append(len(results))
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        return await super().commit(results, events, status)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    s = CountingStore(tmp_path / "jobs.db")
    s.commits = []
    await s.open()
    await s.create_job(Job(id="j", status=JobStatus.RUNNING, rubric_name="r", rubric={},
                           total=5, created_at=1.0), [(f"i{i}", {}) for i in range(5)])
    yield s
    await s.close()


def _batches(batch_size: int = 2) -> JobBatches:
    job = Job(id="j", status=JobStatus.RUNNING, rubric_name="r", rubric={}, total=5,
              started_at=1.0)
    return JobBatches(job, ProgressTracker(5, 0, 1.0, 2.0, clock=lambda: 2.0), batch_size)


def _row(i: int, score: float | None = 4.0) -> ResultRow:
    status = "scored" if score is not None else "unscored"
    return ResultRow("j", i, f"i{i}", status, score, {"id": f"i{i}", "score": score})


async def test_queued_rows_are_one_commit_with_their_batch_events(store: CountingStore) -> None:
    bus, stored = EventBus(), []
    writer = ResultWriter(store, bus, on_stored=stored.append)
    batches = _batches(batch_size=2)
    with bus.subscribe("j") as live:
        futures = [writer.write(batches, _row(i, None if i == 4 else 4.0)) for i in range(5)]
        writer.start()
        await asyncio.wait_for(asyncio.gather(*futures), 5)
        published = [live.get_nowait() for _ in range(live.qsize())]
        await writer.close()
    assert store.commits == [5] and stored == [5]
    assert [e.data["batch_number"] for e in published] == [1, 2]
    assert [[r["id"] for r in e.data["results"]] for e in published] == [["i0", "i1"],
                                                                         ["i2", "i3"]]
    assert [e.id for e in await store.events_after("j", 0)] == [e.id for e in published]
    job = batches.job
    assert (job.completed, job.scored, job.unscored, job.batches) == (5, 4, 1, 2)
    last = batches.take()  # the partial batch, announced by the runner before `complete`
    assert last is not None and last.announces == [4]
    assert last.data["progress"]["completed"] == 5
    assert batches.take() is None


async def test_a_failed_commit_fails_its_rows_and_the_writer_goes_on(
        store: CountingStore) -> None:
    writer = ResultWriter(store, EventBus())
    writer.start()
    batches = _batches(batch_size=10)
    store.fail_next = True
    with pytest.raises(OSError, match="disk full"):
        await asyncio.wait_for(writer.write(batches, _row(0)), 5)
    await asyncio.wait_for(writer.write(batches, _row(1)), 5)
    await writer.close()
    assert batches.job.completed == 1
    assert [idx for idx, _ in await store.records("j", -1, 10)] == [1]


async def test_close_stores_everything_queued_first(store: CountingStore) -> None:
    writer = ResultWriter(store, EventBus())
    writer.start()
    batches = _batches()
    futures = [writer.write(batches, _row(i)) for i in range(3)]
    await asyncio.wait_for(writer.close(), 5)
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(await store.records("j", -1, 10)) == 3
