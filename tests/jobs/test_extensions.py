"""Item and finish hooks: merged fields, failures noted on the record or as `error` events
that do not end the stream, hooks named by `__name__`. (The runner calling them:
tests/jobs/test_runner.py.)"""

from __future__ import annotations

import functools
import logging

import pytest

from evalserve.errors import TrackingError
from evalserve.jobs.extensions import apply_item_hooks, finish_events, hook_name
from evalserve.jobs.models import EventType, Job, JobStatus
from evalserve.jobs.store import NewEvent

JOB = Job(id="j1", status=JobStatus.COMPLETED, rubric_name="r", rubric={}, total=2)
ITEM = {"id_alumno": "A1", "respuesta": "abc"}
RECORD = {"id_alumno": "A1", "nota": 4}


def test_hooks_are_named_by_their_name_or_repr() -> None:
    def chars(job, item, record):  # noqa: ANN001, ANN202
        return {}

    partial = functools.partial(chars)
    assert hook_name(chars) == "chars"
    assert hook_name(partial) == repr(partial)


async def test_item_hooks_merge_in_order_sync_and_async() -> None:
    def first(job, item, record):  # noqa: ANN001, ANN202
        return {"chars": len(item["respuesta"]), "tag": "first"}

    async def second(job, item, record):  # noqa: ANN001, ANN202
        return {"tag": "second", "saw": record["chars"]}

    def nothing(job, item, record):  # noqa: ANN001, ANN202
        return None

    out = await apply_item_hooks([first, second, nothing], JOB, ITEM, RECORD)
    assert out == {**RECORD, "chars": 3, "tag": "second", "saw": 3}
    assert RECORD == {"id_alumno": "A1", "nota": 4}  # not modified in place


async def test_a_failing_item_hook_is_noted_and_the_others_still_run(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(job, item, record):  # noqa: ANN001, ANN202
        raise ValueError("boom")

    async def also_broken(job, item, record):  # noqa: ANN001, ANN202
        raise KeyError("reference")

    def fine(job, item, record):  # noqa: ANN001, ANN202
        return {"ok": True}

    caplog.set_level(logging.WARNING, logger="evalserve.jobs.extensions")
    out = await apply_item_hooks([broken, fine, also_broken], JOB, ITEM, RECORD)
    assert out == {**RECORD, "ok": True,
                   "hook_errors": ["broken: boom", "also_broken: 'reference'"]}
    assert "item hook broken failed: boom" in caplog.text


async def test_no_item_hooks_leave_the_record_alone() -> None:
    assert await apply_item_hooks([], JOB, ITEM, RECORD) is RECORD


async def test_finish_hooks_become_events_in_order() -> None:
    seen = []

    async def summary(job, records):  # noqa: ANN001, ANN202
        seen.append((job.id, len(records)))
        return [{"event": "metrics", "data": {"n": len(records)}}, {"data": {"x": 1}}]

    async def silent(job, records):  # noqa: ANN001, ANN202
        return None

    async def no_data(job, records):  # noqa: ANN001, ANN202
        return [{"event": "tracked"}]

    events = await finish_events([summary, silent, no_data], JOB, [RECORD, RECORD])
    assert events == [NewEvent("j1", "metrics", {"n": 2}), NewEvent("j1", "message", {"x": 1}),
                      NewEvent("j1", "tracked", {})]
    assert seen == [("j1", 2)]
    assert not any(e.final for e in events)


async def test_a_failing_finish_hook_is_an_error_event_that_does_not_end_the_stream(
        caplog: pytest.LogCaptureFixture) -> None:
    async def tracking(job, records):  # noqa: ANN001, ANN202
        raise TrackingError("MLflow is down: start it or unset MLFLOW_TRACKING_URI")

    async def crashes(job, records):  # noqa: ANN001, ANN202
        raise RuntimeError("oops")

    async def after(job, records):  # noqa: ANN001, ANN202
        return [{"event": "metrics", "data": {}}]

    caplog.set_level(logging.WARNING, logger="evalserve.jobs.extensions")
    events = await finish_events([tracking, crashes, after], JOB, [])
    assert [e.type for e in events] == [EventType.ERROR, EventType.ERROR, "metrics"]
    assert events[0].data == {
        "error": {"message": "MLflow is down: start it or unset MLFLOW_TRACKING_URI",
                  "type": "server_error", "code": "tracking_error"},
        "hook": "tracking", "job_id": "j1", "status": "completed"}
    assert events[1].data["hook"] == "crashes"
    assert events[1].data["error"]["code"] == "internal_error"
    assert not any(e.final for e in events)
    assert "finish hook tracking failed for job j1" in caplog.text
