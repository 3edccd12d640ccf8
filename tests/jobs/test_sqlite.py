"""What is SQLite's own in `SQLiteJobStore`: the migration of older database files, and its
storage faults: every transaction ended, a full disk or a lock is `StorageFullError` and loses
nothing. The behaviour both backends share (commits, event ids, queues, retries, expiry) is
the contract suite's, in `tests/jobs/contract/`, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from evalserve.errors import StorageFullError, error_body
from evalserve.jobs.models import Job, JobStatus, ResultRow
from evalserve.jobs.schema import SCHEMA_VERSION
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.jobs.store import NewEvent
from tests.jobs.disk import DiskStore


def job(job_id: str, created: float, total: int = 3, owner: str | None = None) -> Job:
    return Job(id=job_id, status=JobStatus.QUEUED, rubric_name="r", rubric={"name": "r"},
               total=total, created_at=created, owner=owner)


def row(job_id: str, idx: int, score: float | None = 3, status: str | None = None) -> ResultRow:
    status = status or ("scored" if score is not None else "unscored")
    return ResultRow(job_id, idx, f"i{idx}", status, score, {"id": f"i{idx}", "score": score})


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
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        check.close()
        assert await store.get_report("old") is None
    finally:
        await store.close()


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
