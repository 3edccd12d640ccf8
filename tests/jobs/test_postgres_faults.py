"""PostgreSQL storage faults on a real server: which errors are faults; the server stopped
mid-run (`pg_ctl stop -m immediate`, a crash) and started again: calls fail with
`StorageFullError` while it is down, a commit cut by the crash stores nothing, the store works
again by itself once the server is back, and a running job pauses and completes with every
result stored and announced once; a pool whose connections are all busy is a fault too."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from evalserve.engines.base import GenerationRequest, GenerationResult
from evalserve.errors import ConfigurationError, StorageFullError, error_body
from evalserve.jobs.config import RunnerConfig
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.models import JobEvent, JobStatus, ResultRow
from evalserve.jobs.postgres import PostgresJobStore
from evalserve.jobs.postgres_faults import configuration_fault, storage_fault
from evalserve.jobs.service import JobService
from evalserve.jobs.store import NewEvent, StatusChange
from tests.fakes import ScriptedEngine
from tests.jobs.contract.rows import items, job, row
from tests.jobs.helpers import answer, item
from tests.postgres_server import PostgresServer
from tests.waiting import wait_until

E = psycopg.errors


@pytest.mark.parametrize(("exc", "why"), [
    (E.DiskFull("could not extend file"), "disk holding the PostgreSQL database is full"),
    (E.OutOfMemory("out of memory"), "out of memory"),
    (E.TooManyConnections("sorry, too many clients"), "no connection slot left"),
    (E.AdminShutdown("terminating connection"), "shutting down, restarting"),
    (E.CannotConnectNow("the database system is starting up"), "shutting down, restarting"),
    (E.ConnectionFailure("connection lost"), "connection to PostgreSQL failed"),
    (E.IoError("could not read block"), "failed a read or write of its files"),
    (E.ReadOnlySqlTransaction("read-only"), "read-only"),
    (E.SerializationFailure("could not serialize"), "conflicted with this one"),
    (E.DeadlockDetected("deadlock detected"), "deadlocked"),
    (psycopg.OperationalError("server closed the connection unexpectedly"), "refused or lost"),
    (PoolTimeout("couldn't get a connection after 2.00 sec"), "all 7 connections "
                                                              "(DATABASE_POOL_SIZE)"),
])
def test_storage_faults_are_storage_unavailable(exc: Exception, why: str) -> None:
    error = storage_fault(exc, writing=True, where="postgresql://***@db/x", timeout=2,
                          pool_size=7)
    assert error is not None and why in error.message
    assert (error.status, error_body(error)["code"]) == (503, "storage_unavailable")
    assert "check the PostgreSQL server at postgresql://***@db/x" in error.message
    read = storage_fault(exc, writing=False, where="h", timeout=2, pool_size=7)
    assert read is not None and "cannot be read right now" in read.message


@pytest.mark.parametrize("exc", [E.UniqueViolation("duplicate key"), E.SyntaxError("syntax"),
                                 E.DataError("invalid input"), ValueError("not psycopg"),
                                 psycopg.ProgrammingError("wrong call")])
def test_other_errors_are_the_calls_own(exc: Exception) -> None:
    assert storage_fault(exc, writing=True, where="h", timeout=1, pool_size=1) is None


def test_a_refused_login_is_a_configuration_error_with_the_url_redacted() -> None:
    refused = configuration_fault(E.InvalidPassword(
        "password authentication failed for postgresql://u:hunter2@db/x"), "postgresql://***@db/x")
    assert isinstance(refused, ConfigurationError) and "hunter2" not in refused.message
    assert "postgresql://***@db/x" in refused.message and "fix DATABASE_URL" in refused.message
    assert configuration_fault(E.InvalidCatalogName("no db"), "h") is not None
    assert configuration_fault(E.AdminShutdown("bye"), "h") is None


@contextlib.contextmanager
def stopped(server: PostgresServer) -> Iterator[None]:
    """The server crashed (immediate stop) for the block, started again after it."""
    server.crash()
    try:
        yield
    finally:
        server.start()


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresJobStore]:
    s = PostgresJobStore(postgres_url, pool_size=3, timeout=1)
    await s.open()
    yield s
    await s.close()


async def test_a_stopped_server_is_storage_unavailable_until_it_is_back(
        postgres_server: PostgresServer, store: PostgresJobStore) -> None:
    await store.create_job(job("a", 1.0, total=3), items(3))
    await store.commit([row("a", 0, 4)], [NewEvent("a", "batch_complete", {}, announces=[0])])
    with stopped(postgres_server):
        with pytest.raises(StorageFullError, match="job store cannot write") as refused:
            await store.commit([row("a", 1, 2)], [NewEvent("a", "batch_complete", {},
                                                           announces=[1])])
        assert refused.value.status == 503
        with pytest.raises(StorageFullError, match="cannot be read right now"):
            await store.get_job("a")
        with pytest.raises(StorageFullError):
            await store.create_job(job("b", 2.0), items(1))
    # Back: the pool replaces its dead connections by itself; nothing refused was stored.
    a = await wait_until(lambda: _readable(store, "a"), 30, what="the store readable again")
    assert (a.completed, a.batches) == (1, 1)
    assert [j.id for j in await store.list_jobs()] == ["a"]
    assert [e.id for e in await store.events_after("a", 0)] == [1]
    stored = await store.commit([row("a", 1, 2)], [NewEvent("a", "batch_complete", {},
                                                            announces=[1])])
    assert [e.id for e in stored] == [2]
    assert [idx for idx, _ in await store.records("a")] == [0, 1]


async def _readable(store: PostgresJobStore, job_id: str):  # noqa: ANN202 - Job | None
    try:
        return await store.get_job(job_id)
    except StorageFullError:
        return None


async def test_a_commit_cut_by_the_crash_stores_none_of_it(
        postgres_server: PostgresServer, postgres_url: str, store: PostgresJobStore) -> None:
    """The commit is inside its transaction (waiting on a row lock another session holds)
    when the server dies: it raises `StorageFullError` and none of its results, events or
    status change is there after the restart."""
    await store.create_job(job("a", 1.0, total=2), items(2))
    blocker = psycopg.connect(postgres_url)
    blocker.execute("SELECT 1 FROM jobs WHERE id = 'a' FOR UPDATE")
    commit = asyncio.create_task(store.commit(
        [row("a", 0, 5), row("a", 1, 1)], [NewEvent("a", "batch_complete", {},
                                                    announces=[0, 1])],
        [StatusChange("a", JobStatus.COMPLETED, finished_at=3.0)]))
    try:
        await wait_until(lambda: _waiting_on_a_lock(postgres_url), 10,
                         what="the commit waiting on the row lock")
        with stopped(postgres_server):
            with pytest.raises(StorageFullError, match="cannot write"):
                await asyncio.wait_for(commit, 10)
    finally:
        blocker.close()
    a = await wait_until(lambda: _readable(store, "a"), 30, what="the store readable again")
    assert (a.status, a.completed, a.batches) == (JobStatus.QUEUED, 0, 0)
    assert await store.records("a") == [] and await store.events_after("a", 0) == []


def _waiting_on_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = "
                            "'Lock' AND query LIKE '%last_event_id FROM jobs%'").fetchone()[0] > 0


async def test_a_pool_whose_connections_are_all_busy_is_storage_unavailable(
        postgres_url: str) -> None:
    store = PostgresJobStore(postgres_url, pool_size=1, timeout=0.5)
    await store.open()
    await store.create_job(job("a", 1.0), items(1))
    blocker = psycopg.connect(postgres_url)
    blocker.execute("SELECT 1 FROM jobs WHERE id = 'a' FOR UPDATE")
    commit = asyncio.create_task(store.commit([row("a", 0, 3)]))
    try:
        await wait_until(lambda: _waiting_on_a_lock(postgres_url), 10,
                         what="the commit holding the only connection")
        with pytest.raises(StorageFullError, match=r"all 1 connections \(DATABASE_POOL_SIZE\) "
                                                   "stayed busy"):
            await store.list_jobs()
        blocker.rollback()
        await asyncio.wait_for(commit, 10)
        assert (await store.get_job("a")).completed == 1
    finally:
        blocker.close()
        await store.close()


TOTAL = 30
MIDWAY = 10


class MidwayEngine(ScriptedEngine):
    """Answers the first `MIDWAY` items at once; the others once `gate` opens."""

    def __init__(self) -> None:
        super().__init__(lambda req: answer(), capacity=4)
        self.gate = asyncio.Event()
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.calls += 1
        if self.calls > MIDWAY:
            await self.gate.wait()
        return await super().generate(request)


class CountingStore(PostgresJobStore):
    """Counts the commits refused with `StorageFullError`."""

    refused = 0

    async def commit(self, results: Sequence[ResultRow] = (), events: Sequence[NewEvent] = (),
                     status: Sequence[StatusChange] = ()) -> list[JobEvent]:
        try:
            return await super().commit(results, events, status)
        except StorageFullError:
            self.refused += 1
            raise


async def test_a_running_job_waits_out_a_server_restart_and_loses_nothing(
        postgres_server: PostgresServer, postgres_url: str) -> None:
    engine = MidwayEngine()

    async def ready() -> MidwayEngine:
        return engine

    store = CountingStore(postgres_url, pool_size=3, timeout=1)
    service = JobService(store, JudgeKit(), engine, ready, RunnerConfig(batch_size=4),
                         poll_interval=0.05)
    await service.start()
    try:
        job_id = (await service.submit([item(i) for i in range(TOTAL)])).job.id
        follower = asyncio.create_task(_follow(service, job_id))
        await wait_until(lambda: _completed(service, job_id, MIDWAY), 30,
                         what=f"{MIDWAY} results stored")
        with stopped(postgres_server):
            engine.gate.set()
            await wait_until(lambda: store.refused >= 2, 30, what="two refused commits")
            with pytest.raises(StorageFullError) as refused:
                await service.submit([item(0)])
            assert error_body(refused.value)["code"] == "storage_unavailable"
            assert not follower.done()
        events = await asyncio.wait_for(follower, 60)
        announced = [r["id_alumno"] for e in events if e.type == "batch_complete"
                     for r in e.data["results"]]
        _, chunks = await service.export(job_id, "jsonl")
        exported = [json.loads(line)["id_alumno"]
                    for line in "".join([c async for c in chunks]).splitlines() if line]
        expected = [f"A{i:03d}" for i in range(TOTAL)]
        assert len(announced) == len(set(announced)) == TOTAL, "a result announced twice"
        assert sorted(announced) == sorted(exported) == expected
        assert events[-1].type == "complete" and events[-1].data["completed"] == TOTAL
        done = await service.get(job_id)
        assert (done.status, done.completed, done.scored) == (JobStatus.COMPLETED, TOTAL, TOTAL)
        assert await store.unannounced_results(job_id) == []
    finally:
        if not postgres_server.running:
            postgres_server.start()
        await service.close()


async def _follow(service: JobService, job_id: str) -> list[JobEvent]:
    return [event async for event in service.follow(job_id)]


async def _completed(service: JobService, job_id: str, n: int) -> bool:
    return (await service.get(job_id)).completed >= n

