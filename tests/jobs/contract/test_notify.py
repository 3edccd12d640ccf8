"""The store contract of cross-process event notifications: on PostgreSQL a store listening
hears every commit of events on the database, by any store, once committed (job id and last
event id); SQLite cannot tell (its subscribers poll)."""

from __future__ import annotations

import pytest

from evalserve.jobs.store import JobStore, NewEvent
from tests.jobs.contract.conftest import Backend
from tests.jobs.contract.rows import job, row
from tests.waiting import wait_until


async def test_a_listening_store_hears_other_stores_commits(backend: Backend,
                                                            store: JobStore) -> None:
    heard: list[tuple[str, int]] = []
    other = backend.make()
    await other.open()
    try:
        listening = await other.listen(lambda job_id, last: heard.append((job_id, last)))
        if backend.name == "sqlite":
            assert listening is False
            return
        assert listening is True
        await wait_until(lambda: other.listener.listening.is_set(), what="the listener")
        await store.create_job(job("a", 1.0), [("i0", {}), ("i1", {})])
        await store.create_job(job("b", 2.0), [("i0", {})])
        # The writer's one-job group commit, and a commit of several jobs.
        await store.commit([row("a", 0)], [NewEvent("a", "batch_complete", {"n": 1},
                                                    announces=[0])])
        await store.commit([row("a", 1), row("b", 0)],
                           [NewEvent("a", "batch_complete", {"n": 2}, announces=[1]),
                            NewEvent("a", "complete", {}, final=True),
                            NewEvent("b", "batch_complete", {}, announces=[0])])
        await store.commit([row("a", 1)])  # results only: no event, no notification
        # Notifications arrive in commit order: once this one is heard, all earlier ones are.
        await store.commit(events=[NewEvent("b", "cancelled", {}, final=True)])
        await wait_until(lambda: ("b", 2) in heard, what="the last notification")
        assert sorted(heard) == [("a", 1), ("a", 3), ("b", 1), ("b", 2)]
    finally:
        await other.close()


async def test_a_failed_commit_notifies_nothing(backend: Backend, store: JobStore) -> None:
    if backend.name == "sqlite":
        pytest.skip("SQLite stores do not notify")
    heard: list[tuple[str, int]] = []
    assert await store.listen(lambda job_id, last: heard.append((job_id, last)))
    await wait_until(lambda: store.listener.listening.is_set(), what="the listener")
    await store.create_job(job("a", 1.0), [("i0", {})])
    with pytest.raises(Exception, match="no job 'zz'"):
        await store.commit(events=[NewEvent("a", "batch_complete", {}),
                                   NewEvent("zz", "batch_complete", {})])
    await store.commit(events=[NewEvent("a", "batch_complete", {})])
    await wait_until(lambda: heard, what="the notification of the commit that succeeded")
    assert heard == [("a", 1)]
