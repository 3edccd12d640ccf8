"""ResultWriter and JobBatches: group commits, batch events stored with their results and
published only once stored, failed commits retried, a full disk waited out, rows announced only
once committed, failures handed to the waiting items, a writer that survives them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from evalserve.errors import StorageFullError
from evalserve.jobs.events import EventBus
from evalserve.jobs.models import Job, JobEvent, JobStatus, ResultRow
from evalserve.jobs.progress import ProgressTracker
from evalserve.jobs.store import NewEvent, StatusChange
from evalserve.jobs.writer import JobBatches, ResultWriter
from tests.jobs.disk import DiskStore
from tests.waiting import wait_until

#: How many times the writer retries a failed commit by default.
RETRIES = 3


class CountingStore(DiskStore):
    """The real SQLite store, counting commits; `fail_next = n` makes the next n commits
    raise, `fail_idx` every commit holding one of those item indexes."""

    commits: list[int]
    fail_next = 0
    fail_idx: frozenset[int] = frozenset()

    async def commit(self, results: Sequence[ResultRow] = (), events: Sequence[NewEvent] = (),
                     status: Sequence[StatusChange] = ()) -> list[JobEvent]:
        self.commits.append(len(results))
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("disk full")
        if any(r.idx in self.fail_idx for r in results):
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


async def test_a_commit_failing_every_retry_fails_its_rows_and_the_writer_goes_on(
        store: CountingStore) -> None:
    writer = ResultWriter(store, EventBus())
    writer.start()
    batches = _batches(batch_size=10)
    store.fail_next = RETRIES + 1
    with pytest.raises(OSError, match="disk full"):
        await asyncio.wait_for(writer.write(batches, _row(0)), 5)
    await asyncio.wait_for(writer.write(batches, _row(1)), 5)
    await writer.close()
    assert store.commits == [1] * (RETRIES + 1) + [1]  # every try of row 0, then row 1
    assert batches.job.completed == 1
    assert [idx for idx, _ in await store.records("j", -1, 10)] == [1]


async def test_rows_whose_commit_failed_are_never_announced(store: CountingStore) -> None:
    """Rows joined the job's batch buffer (JobBatches.add) before their commit: when it
    failed, the next batch and the runner's final batch still announced them, unstored."""
    bus = EventBus()
    writer = ResultWriter(store, bus)
    writer.start()
    batches = _batches(batch_size=2)
    store.fail_idx = frozenset({0})
    with bus.subscribe("j") as live:
        with pytest.raises(OSError):
            await asyncio.wait_for(writer.write(batches, _row(0)), 5)
        await asyncio.wait_for(writer.write(batches, _row(1)), 5)
        assert live.empty()  # row 1 alone is no full batch: nothing announced yet
        await asyncio.wait_for(writer.write(batches, _row(2)), 5)
        published = [live.get_nowait() for _ in range(live.qsize())]
    await writer.close()
    assert [[r["id"] for r in e.data["results"]] for e in published] == [["i1", "i2"]]
    assert published[0].data["progress"]["completed"] == 2
    assert [idx for idx, _ in await store.records("j", -1, 10)] == [1, 2]
    assert (batches.job.completed, batches.tracker.completed, batches.rows) == (2, 2, [])
    assert batches.take() is None


async def test_a_group_commit_that_fails_once_is_retried(store: CountingStore) -> None:
    """A failed group commit failed its rows at once (and with them their job) instead of
    being retried."""
    bus = EventBus()
    writer = ResultWriter(store, bus)
    batches = _batches(batch_size=2)
    store.fail_next = 1
    with bus.subscribe("j") as live:
        futures = [writer.write(batches, _row(i)) for i in range(4)]
        writer.start()
        await asyncio.wait_for(asyncio.gather(*futures), 5)
        published = [live.get_nowait() for _ in range(live.qsize())]
    await writer.close()
    assert store.commits == [4, 4]
    assert [[r["id"] for r in e.data["results"]] for e in published] == [["i0", "i1"],
                                                                         ["i2", "i3"]]
    assert [e.data["batch_number"] for e in await store.events_after("j", 0)] == [1, 2]
    assert batches.job.completed == 4 and batches.job.batches == 2


def _big(i: int) -> ResultRow:
    """A result that needs new pages of the database file."""
    return ResultRow("j", i, f"i{i}", "scored", 3.0, {"id": f"i{i}", "text": "x" * 5000})


async def test_while_the_disk_is_full_rows_wait_and_are_stored_once_it_is_not(
        store: CountingStore) -> None:
    """A full disk failed every row being written (and their job); now the rows wait,
    nothing of them is announced, and they are stored and announced once space is back."""
    bus = EventBus()
    writer = ResultWriter(store, bus)
    writer.start()
    batches = _batches(batch_size=2)
    await store.fill_disk()
    with bus.subscribe("j") as live:
        futures = [writer.write(batches, _big(i)) for i in range(3)]
        await wait_until(lambda: store.refused >= 5 or any(f.done() for f in futures),
                         what="five refused commits")
        assert not any(f.done() for f in futures) and live.empty()
        assert isinstance(writer.storage_error, StorageFullError)
        assert await store.records("j") == [] and batches.rows == []
        writable = asyncio.create_task(writer.wait_writable())
        with pytest.raises(TimeoutError):  # the runner would not start another item now
            await asyncio.wait_for(asyncio.shield(writable), 0.05)
        await store.free_disk()
        await asyncio.wait_for(asyncio.gather(*futures), 5)
        await asyncio.wait_for(writable, 5)  # it was waiting: done once the rows were stored
        published = [live.get_nowait() for _ in range(live.qsize())]
    assert writer.storage_error is None
    assert [[r["id"] for r in e.data["results"]] for e in published] == [["i0", "i1"]]
    assert [idx for idx, _ in await store.records("j")] == [0, 1, 2]
    stored = await writer.announce(batches)
    assert [e.data["results"][0]["id"] for e in stored] == ["i2"]
    assert batches.rows == [] and await store.unannounced_results("j") == []
    await writer.close()


async def test_announce_lets_rows_go_only_once_their_event_is_stored(
        store: CountingStore) -> None:
    """The runner's last batch (JobBatches.take) emptied the buffer before its commit: a
    failed commit left stored rows that no event would ever announce."""
    writer = ResultWriter(store, EventBus())
    writer.start()
    batches = _batches(batch_size=10)
    await asyncio.wait_for(writer.write(batches, _row(0)), 5)
    store.fail_next = RETRIES + 1
    with pytest.raises(OSError):
        await writer.announce(batches, [NewEvent("j", "complete", {}, final=True)])
    assert [r.idx for r in batches.rows] == [0] and batches.job.batches == 0
    stored = await writer.announce(batches, [NewEvent("j", "complete", {}, final=True)],
                                   [StatusChange("j", JobStatus.COMPLETED, finished_at=3.0)])
    assert [(e.type, e.data.get("batch_number")) for e in stored] == \
        [("batch_complete", 1), ("complete", None)]
    assert (await store.get_job("j")).status is JobStatus.COMPLETED
    assert batches.rows == [] and await store.unannounced_results("j") == []
    await writer.close()


async def test_close_gives_up_on_a_full_disk(store: CountingStore) -> None:
    """Closing while the disk stays full ends after bounded tries; the row is not stored (its
    item is graded again when the job resumes)."""
    writer = ResultWriter(store, EventBus())
    writer.start()
    await store.fill_disk()
    future = writer.write(_batches(), _big(0))
    await wait_until(lambda: store.refused >= 1 or future.done(), what="a refused commit")
    assert not future.done()
    await asyncio.wait_for(writer.close(), 5)
    assert isinstance(future.exception(), StorageFullError)
    assert await store.records("j") == []


async def test_close_stores_everything_queued_first(store: CountingStore) -> None:
    writer = ResultWriter(store, EventBus())
    writer.start()
    batches = _batches()
    futures = [writer.write(batches, _row(i)) for i in range(3)]
    await asyncio.wait_for(writer.close(), 5)
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(await store.records("j", -1, 10)) == 3
