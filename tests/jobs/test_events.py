"""follow_events: stored first, then live, each once, resuming after an id, recovering gaps,
waiting out reads the store cannot serve."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evalserve.errors import NotFoundError, StorageFullError
from evalserve.jobs.events import EventBus, follow_events
from evalserve.jobs.models import Job, JobEvent, JobStatus
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.jobs.store import NewEvent, StatusChange
from tests.waiting import wait_until


@pytest.fixture
async def store(tmp_path: Path):  # noqa: ANN201
    s = SQLiteJobStore(tmp_path / "jobs.db")
    await s.open()
    await s.create_job(Job(id="j", status=JobStatus.RUNNING, rubric_name="r", rubric={},
                           total=1, created_at=1.0), [("i0", {})])
    yield s
    await s.close()


async def test_replays_stored_then_follows_live(store: SQLiteJobStore) -> None:
    bus = EventBus()
    bus.publish(await store.commit(events=[NewEvent("j", "a", {"n": 1}),
                                           NewEvent("j", "b", {"n": 2})]))
    got: list[int] = []

    async def follow(after: int) -> list[int]:
        return [e.id async for e in follow_events(store, bus, "j", after, poll_interval=5)]

    late = asyncio.create_task(follow(0))
    resumed = asyncio.create_task(follow(1))
    await wait_until(lambda: bus.subscribers("j") == 2, what="both followers subscribed")
    bus.publish(await store.commit(events=[NewEvent("j", "c", {})]))
    bus.publish(await store.commit(events=[NewEvent("j", "done", {}, final=True)]))
    got = await asyncio.wait_for(late, 5)
    assert got == [1, 2, 3, 4]
    assert await asyncio.wait_for(resumed, 5) == [2, 3, 4]
    assert bus.subscribers("j") == 0


async def test_events_the_bus_never_delivered_are_read_from_the_store(
        store: SQLiteJobStore) -> None:
    bus = EventBus()
    follower = asyncio.create_task(_ids(store, bus))
    await wait_until(lambda: bus.subscribers("j") == 1, what="the follower subscribed")
    stored = await store.commit(events=[NewEvent("j", "a", {}), NewEvent("j", "b", {})])
    final = await store.commit(events=[NewEvent("j", "done", {}, final=True)])
    bus.publish(final)  # events 1 and 2 never published: the gap is noticed
    assert await asyncio.wait_for(follower, 5) == [e.id for e in stored + final]
    await store.commit(status=[StatusChange("j", JobStatus.COMPLETED, finished_at=2.0)])
    # A client resuming after the final event of a finished job gets an empty, ended stream.
    silent = asyncio.create_task(_ids(store, EventBus(), after=3))
    assert await asyncio.wait_for(silent, 5) == []


async def _ids(store: SQLiteJobStore, bus: EventBus, after: int = 0) -> list[int]:
    return [e.id async for e in follow_events(store, bus, "j", after, poll_interval=0.05)]


async def test_unknown_job(store: SQLiteJobStore) -> None:
    with pytest.raises(NotFoundError):
        await anext(follow_events(store, EventBus(), "nope"))


class FlakyStore(SQLiteJobStore):
    """The real store whose next `failing_reads` reads of events or of the job fail as a
    locked or unreadable database does."""

    failing_reads = 0
    failed = 0

    def _fault(self) -> None:
        if self.failing_reads:
            self.failing_reads -= 1
            self.failed += 1
            raise StorageFullError("the job store cannot be read right now (database is locked)")

    async def events_after(self, job_id: str, after_id: int, limit: int = 500) -> list[JobEvent]:
        self._fault()
        return await super().events_after(job_id, after_id, limit)

    async def get_job(self, job_id: str) -> Job:
        self._fault()
        return await super().get_job(job_id)


async def test_the_stream_goes_on_while_reads_fail_for_a_while(tmp_path: Path) -> None:
    """A failing store read inside the follow loop ended the SSE stream mid-way with an
    error (a 500 to the client); the stream now waits and goes on with every event, once."""
    store = FlakyStore(tmp_path / "flaky.db")
    await store.open()
    try:
        await store.create_job(Job(id="j", status=JobStatus.RUNNING, rubric_name="r",
                                   rubric={}, total=1, created_at=1.0), [("i0", {})])
        bus = EventBus()
        first = await store.commit(events=[NewEvent("j", "a", {})])
        follower = asyncio.create_task(_ids(store, bus))
        await wait_until(lambda: bus.subscribers("j") == 1, what="the follower subscribed")
        store.failing_reads = 4
        # Never published: the follower has to read them from the store, which fails first.
        unpublished = await store.commit(events=[NewEvent("j", "b", {}), NewEvent("j", "c", {})])
        await wait_until(lambda: store.failing_reads == 0 or follower.done(),
                         what="four failed reads")
        assert not follower.done(), f"the stream ended: {follower.exception()!r}"
        final = await store.commit(events=[NewEvent("j", "done", {}, final=True)])
        bus.publish(final)
        assert await asyncio.wait_for(follower, 10) == [e.id for e in first + unpublished + final]
        assert store.failed == 4
    finally:
        await store.close()


async def test_live_events_of_a_job_run_elsewhere_reach_this_replica(postgres_url: str) -> None:
    """Two services on one PostgreSQL database; the job runs on `a`, a subscriber follows it
    on `b`, whose store poll is 60 s: every batch reaches `b` live, through LISTEN/NOTIFY."""
    from evalserve.jobs.config import RunnerConfig
    from evalserve.jobs.grading import JudgeKit
    from evalserve.jobs.postgres import PostgresJobStore
    from evalserve.jobs.service import JobService
    from tests.jobs.helpers import batch_ids, engine, items

    def service(name: str, eng, poll: float) -> JobService:  # noqa: ANN001
        async def ready():  # noqa: ANN202
            return eng

        return JobService(PostgresJobStore(postgres_url, pool_size=3), JudgeKit(), eng, ready,
                          RunnerConfig(batch_size=2, replica_id=name), poll_interval=poll)

    a = service("a", engine(capacity=2, delay=0.02), poll=0.2)
    idle = engine()
    b = service("b", idle, poll=60.0)
    await a.start()
    await b.start()
    try:
        b.runner.leases.claim = _claims_nothing(b.runner.leases.claim)
        await wait_until(lambda: b.store.listener.listening.is_set(), what="b listening")
        sub = await a.submit(items(12))
        events = await asyncio.wait_for(_all(b, sub.job.id), timeout=20)
    finally:
        await b.close()
        await a.close()
    assert events[-1].type == "complete"
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert sorted(batch_ids(events)) == [f"A{i:03d}" for i in range(12)]
    assert idle.requests == []  # graded on a only


def _claims_nothing(claim):  # noqa: ANN001, ANN202
    async def none(job_ids, max_attempts):  # noqa: ANN001, ANN202
        return await claim([], max_attempts)

    return none


async def _all(service, job_id: str) -> list[JobEvent]:  # noqa: ANN001
    return [e async for e in service.follow(job_id)]
