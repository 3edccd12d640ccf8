"""What the abstract job store defines: the commit payloads and the methods a store must
implement (the stores themselves: the contract suite in tests/jobs/contract/, run on SQLite and
PostgreSQL)."""

from __future__ import annotations

import inspect

import pytest

from evalserve.jobs.models import JobStatus
from evalserve.jobs.store import JobStore, NewEvent, PendingItem, StatusChange

SEAM = {"create_job", "get_job", "list_jobs", "runnable_jobs", "claim_jobs", "renew_leases",
        "release_leases",
        "count_active", "count_queued", "retry_items", "pending_items", "unannounced_results",
        "commit", "events_after", "records", "delete_expired", "get_report"}


def test_a_new_event_is_not_final_and_announces_nothing() -> None:
    event = NewEvent(job_id="j", type="batch_complete", data={"batch": 1})
    assert (event.final, event.announces) == (False, [])
    other = NewEvent(job_id="j", type="batch_complete", data={})
    event.announces.append(0)
    assert other.announces == []  # each event has its own list


def test_a_status_change_carries_only_what_is_given() -> None:
    change = StatusChange(job_id="j", status=JobStatus.RUNNING, started_at=10.0)
    assert (change.finished_at, change.error) == (None, None)
    failed = StatusChange(job_id="j", status=JobStatus.FAILED, finished_at=12.0,
                          error={"message": "boom", "type": "server_error",
                                 "code": "internal_error"})
    assert failed.status.finished and failed.started_at is None


def test_a_pending_item_is_its_index_id_and_data() -> None:
    item = PendingItem(idx=3, item_id="A003", data={"respuesta": "..."})
    assert (item.idx, item.item_id, item.data) == (3, "A003", {"respuesta": "..."})
    assert PendingItem(3, "A003", {}) == PendingItem(idx=3, item_id="A003", data={})


def test_the_seam_is_these_abstract_coroutines() -> None:
    assert JobStore.__abstractmethods__ == SEAM
    for name in SEAM | {"open", "close"}:
        assert inspect.iscoroutinefunction(getattr(JobStore, name)), name
    with pytest.raises(TypeError, match="abstract"):
        JobStore()  # type: ignore[abstract]


async def test_open_and_close_are_optional() -> None:
    async def not_needed(self: JobStore, *args: object, **kwargs: object) -> None:
        raise AssertionError("not called")

    Minimal = type("Minimal", (JobStore,), dict.fromkeys(SEAM, not_needed))  # noqa: N806
    store = Minimal()
    assert await store.open() is None
    assert await store.close() is None
