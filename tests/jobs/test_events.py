"""follow_events: stored first, then live, each once, resuming after an id, recovering gaps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evalserve.errors import NotFoundError
from evalserve.jobs.events import EventBus, follow_events
from evalserve.jobs.models import Job, JobStatus
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
