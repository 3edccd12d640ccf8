"""SQLiteJobStore: atomic commits, per-job event ids, pending items, expiry, requeue, owners,
start attempts, error items and their retry, schema migration, and storage faults: every
transaction ended, a full disk or a lock is `StorageFullError` and loses nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from evalserve.errors import ConflictError, NotFoundError, StorageFullError, error_body
from evalserve.jobs.models import Job, JobStatus, ResultRow
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.jobs.store import NewEvent, StatusChange
from tests.jobs.disk import DiskStore


def job(job_id: str, created: float, total: int = 3, owner: str | None = None) -> Job:
    return Job(id=job_id, status=JobStatus.QUEUED, rubric_name="r", rubric={"name": "r"},
               total=total, created_at=created, owner=owner)


def row(job_id: str, idx: int, score: float | None = 3, status: str | None = None) -> ResultRow:
    status = status or ("scored" if score is not None else "unscored")
    return ResultRow(job_id, idx, f"i{idx}", status, score, {"id": f"i{idx}", "score": score})


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
    assert await store.requeue_interrupted() == (1, [])
    assert [j.id for j in await store.runnable_jobs(10)] == ["interrupted", "old", "new"]


async def test_runnable_jobs_take_owners_in_turn(store: SQLiteJobStore) -> None:
    """Fair scheduling: one owner's many queued jobs do not all go before another owner's."""
    for name, created, owner in (("a1", 1.0, "a"), ("a2", 2.0, "a"), ("a3", 3.0, "a"),
                                 ("b1", 4.0, "b"), ("b2", 5.0, "b"), ("solo", 6.0, None)):
        await store.create_job(job(name, created, owner=owner), [("i0", {})])
    assert [j.id for j in await store.runnable_jobs(10)] == \
        ["a1", "b1", "solo", "a2", "b2", "a3"]


async def test_starts_are_counted_and_poisoned_jobs_are_not_requeued(
        store: SQLiteJobStore) -> None:
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
    assert (await store.get_job("loop")).status is JobStatus.RUNNING
    assert (await store.get_job("once")).status is JobStatus.QUEUED


async def test_owners_filter_lists_and_queue_counts(store: SQLiteJobStore) -> None:
    await store.create_job(job("a", 1.0, owner="k1"), [("i0", {})])
    await store.create_job(job("b", 2.0, owner="k2"), [("i0", {})])
    await store.create_job(job("c", 3.0), [("i0", {})])
    assert [j.id for j in await store.list_jobs(owner="k1")] == ["a"]
    assert [j.id for j in await store.list_jobs()] == ["c", "b", "a"]
    assert (await store.get_job("b")).owner == "k2"
    assert (await store.count_queued("k1"), await store.count_queued(None)) == (1, 1)
    assert await store.count_queued("nobody") == 0


async def test_error_items_are_counted_apart_and_retried_once(store: SQLiteJobStore) -> None:
    await store.create_job(job("a", 1.0, total=4), [(f"i{i}", {}) for i in range(4)])
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


async def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    """A job database from before owners and attempts keeps its jobs and gains the columns."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL,
            rubric_name TEXT NOT NULL, rubric TEXT NOT NULL, options TEXT NOT NULL,
            total INTEGER NOT NULL, completed INTEGER NOT NULL DEFAULT 0,
            scored INTEGER NOT NULL DEFAULT 0, unscored INTEGER NOT NULL DEFAULT 0,
            score_sum REAL NOT NULL DEFAULT 0, batches INTEGER NOT NULL DEFAULT 0,
            last_event_id INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
            started_at REAL, finished_at REAL, error TEXT);
        INSERT INTO jobs (id, status, rubric_name, rubric, options, total, completed, scored,
            created_at) VALUES ('old', 'completed', 'r', '{}', '{}', 1, 1, 1, 1.0);
    """)
    conn.close()
    store = SQLiteJobStore(path)
    await store.open()
    try:
        old = await store.get_job("old")
        assert (old.status, old.scored, old.owner, old.attempts, old.errors) == \
            (JobStatus.COMPLETED, 1, None, 0, 0)
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA user_version").fetchone()[0] == 3
        check.close()
        assert await store.get_report("old") is None
    finally:
        await store.close()


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


@pytest.fixture
async def disk(tmp_path: Path):  # noqa: ANN201
    s = DiskStore(tmp_path / "disk.db")
    await s.open()
    yield s
    await s.close()


def big_items(n: int) -> list[tuple[str, dict]]:
    """Items that need new pages of the database file (a page is 4 KiB)."""
    return [(f"i{i}", {"text": "x" * 3000}) for i in range(n)]


async def test_a_commit_that_fails_at_commit_ends_its_transaction(disk: DiskStore) -> None:
    """COMMIT sat outside the `try` of `_write`: a COMMIT that failed (here a deferred
    foreign key, as a full disk does at COMMIT in WAL mode) left the transaction open, and
    every later write failed with "cannot start a transaction within a transaction"."""
    await disk.create_job(job("a", 1.0), [("i0", {})])
    await disk.on_writer("PRAGMA foreign_keys = ON")
    await disk.on_writer("CREATE TABLE guard (job_id TEXT REFERENCES jobs (id) "
                         "DEFERRABLE INITIALLY DEFERRED)")
    await disk.on_writer("CREATE TRIGGER poison AFTER INSERT ON events WHEN NEW.type = 'poison' "
                         "BEGIN INSERT INTO guard VALUES ('no such job'); END")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await disk.commit([row("a", 0)], [NewEvent("a", "poison", {})])
    stored = await disk.commit([row("a", 0)], [NewEvent("a", "fine", {})])
    assert [(e.type, e.id) for e in stored] == [("fine", 1)]
    assert [e.type for e in await disk.events_after("a", 0)] == ["fine"]
    assert (await disk.get_job("a")).completed == 1


async def test_a_full_disk_refuses_writes_with_storage_full_and_loses_nothing(
        disk: DiskStore) -> None:
    """A full disk raised a bare sqlite3.OperationalError ("database or disk is full"): a 500
    on submission instead of a 503 saying the store is full; once space is back, writes go on
    and what was committed before is all there."""
    await disk.create_job(job("a", 1.0, total=2), big_items(2))
    await disk.commit([row("a", 0)])
    await disk.fill_disk()
    with pytest.raises(StorageFullError, match="job store cannot write.*disk holding "
                                               "DATA_DIR is full") as refused:
        await disk.create_job(job("b", 2.0, total=4), big_items(4))
    assert (refused.value.status, error_body(refused.value)["code"]) == \
        (503, "storage_unavailable")
    big = ResultRow("a", 1, "i1", "scored", 2, {"id": "i1", "text": "y" * 9000})
    with pytest.raises(StorageFullError):
        await disk.commit([big], [NewEvent("a", "batch_complete", {}, announces=[1])])
    assert [j.id for j in await disk.list_jobs()] == ["a"]
    assert (await disk.get_job("a")).completed == 1 and await disk.events_after("a", 0) == []
    await disk.free_disk()
    await disk.commit([big], [NewEvent("a", "batch_complete", {}, announces=[1])])
    await disk.create_job(job("b", 2.0, total=4), big_items(4))
    assert [idx for idx, _ in await disk.records("a")] == [0, 1]
    assert (await disk.get_job("a")).completed == 2 and await disk.unannounced_results("a") \
        == [ResultRow("a", 0, "i0", "scored", 3, {"id": "i0", "score": 3})]


async def test_a_locked_database_is_storage_unavailable(tmp_path: Path) -> None:
    """"database is locked" (another process holding the write lock past the busy timeout)
    raised a bare sqlite3.OperationalError; it is the store's 503 and the write after the
    lock is released works."""
    locked = SQLiteJobStore(tmp_path / "locked.db", busy_timeout=0.05)
    await locked.open()
    other = sqlite3.connect(locked.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageFullError, match="another process holds the database lock"):
            await locked.create_job(job("a", 1.0), [("i0", {})])
        other.execute("ROLLBACK")
        await locked.create_job(job("a", 1.0), [("i0", {})])
        assert [j.id for j in await locked.list_jobs()] == ["a"]
    finally:
        other.close()
        await locked.close()


async def test_an_event_id_beyond_int64_matches_nothing(store: SQLiteJobStore) -> None:
    """`last_event_id=99999999999999999999` overflowed SQLite's integer binding inside the
    SSE generator (OverflowError); an id past every event has no events after it."""
    await store.create_job(job("a", 1.0), [("i0", {})])
    await store.commit(events=[NewEvent("a", "x", {})])
    assert await store.events_after("a", 99999999999999999999) == []


async def test_the_report_is_stored_with_the_end_kept_and_cleared_by_a_retry(
        store: SQLiteJobStore) -> None:
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
