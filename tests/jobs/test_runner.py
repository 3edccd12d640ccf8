"""JobRunner: batching of events, capacity, resume, cancel, failures, hooks, expiry."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from evalserve.errors import ConflictError, EngineUnavailableError, NotFoundError
from evalserve.jobs.models import Job, JobStatus, ResultRow
from evalserve.jobs.store import NewEvent, StatusChange
from tests.fakes import GatedEngine, ScriptedEngine, request_text
from tests.jobs.helpers import (
    answer,
    batch_ids,
    collect,
    engine,
    items,
    running_service,
)
from tests.waiting import wait_until


async def test_job_streams_batches_then_complete(tmp_path: Path) -> None:
    eng = engine(capacity=4)
    async with running_service(tmp_path, eng, batch_size=3) as service:
        sub = await service.submit(items(7))
        events = await collect(service, sub.job.id)
        job = await service.get(sub.job.id)

    assert [e.type for e in events] == ["batch_complete"] * 3 + ["complete"]
    assert [e.id for e in events] == [1, 2, 3, 4]
    batches = [e.data for e in events[:3]]
    assert [len(b["results"]) for b in batches] == [3, 3, 1]
    assert [b["batch_number"] for b in batches] == [1, 2, 3]
    assert [b["progress"]["completed"] for b in batches] == [3, 6, 7]
    assert batches[-1]["progress"]["percentage"] == 100.0
    assert batches[-1]["progress"]["estimated_remaining_seconds"] == 0
    assert sorted(batch_ids(events)) == [f"A{i:03d}" for i in range(7)]
    record = batches[0]["results"][0]
    assert record["nota"] == 4 and record["feedback"] == "Bon treball per a 3r ESO."
    assert record["status"] == "scored"
    final = events[-1].data
    assert final["status"] == "completed"
    assert (final["total"], final["completed"], final["scored"], final["unscored"]) == (7, 7, 7, 0)
    assert job.status is JobStatus.COMPLETED and job.mean_score == 4.0
    assert len(eng.requests) == 7


async def test_in_flight_items_never_exceed_and_reach_capacity(tmp_path: Path) -> None:
    eng = engine(capacity=5, delay=0.02)
    async with running_service(tmp_path, eng, batch_size=10) as service:
        sub = await service.submit(items(40))
        await collect(service, sub.job.id)
    assert eng.max_in_flight == 5
    assert len(eng.requests) == 40


async def test_capacity_is_shared_by_concurrent_jobs(tmp_path: Path) -> None:
    eng = engine(capacity=3, delay=0.02)
    async with running_service(tmp_path, eng, max_concurrent_jobs=3) as service:
        subs = [await service.submit(items(12)) for _ in range(3)]
        for sub in subs:
            await collect(service, sub.job.id)
    assert eng.max_in_flight == 3
    assert len(eng.requests) == 36


async def test_max_concurrent_jobs_keeps_the_others_queued(tmp_path: Path) -> None:
    eng = engine(capacity=2, delay=0.02)
    async with running_service(tmp_path, eng, max_concurrent_jobs=1) as service:
        first = await service.submit(items(6))
        second = await service.submit(items(6))
        assert service.active_jobs() == 2
        await wait_until(async_status(service, first.job.id, JobStatus.RUNNING), timeout=5,
                         what="the first job running")
        assert (await service.get(second.job.id)).status is JobStatus.QUEUED
        await collect(service, second.job.id)
        a, b = await service.get(first.job.id), await service.get(second.job.id)
        assert service.active_jobs() == 0
    assert a.status is b.status is JobStatus.COMPLETED
    assert b.started_at >= a.finished_at


def async_status(service, job_id, status):  # noqa: ANN001, ANN201
    async def check() -> bool:
        return (await service.get(job_id)).status is status

    return check


async def test_resume_grades_only_items_without_a_result(tmp_path: Path) -> None:
    """A job interrupted after 5 of 10 results (3 announced, 2 not): only 5 are graded again,
    every item is announced exactly once."""
    eng = engine(capacity=4)
    async with running_service(tmp_path, eng, start=False, batch_size=3) as service:
        sub = await service.submit(items(10))
        job_id = sub.job.id
        rows = [ResultRow(job_id, i, f"A{i:03d}", "scored", 2,
                          {"id_alumno": f"A{i:03d}", "nota": 2, "feedback": "abans",
                           "status": "scored"}) for i in range(5)]
        await service.store.commit(
            rows, [NewEvent(job_id, "batch_complete",
                            {"batch_number": 1, "results": [r.record for r in rows[:3]],
                             "progress": {}}, announces=[0, 1, 2])],
            [StatusChange(job_id, JobStatus.RUNNING, started_at=1.0)])
        await service.runner.start()
        events = await collect(service, job_id)
        job = await service.get(job_id)

    graded = sorted(r.messages[-1]["content"] for r in eng.requests)
    assert len(eng.requests) == 5
    assert all(f"({i})" in text for i, text in zip(range(5, 10), graded))
    ids = batch_ids(events)
    assert sorted(ids) == [f"A{i:03d}" for i in range(10)]
    assert len(ids) == len(set(ids))
    assert events[1].data["results"][:2] == [rows[3].record, rows[4].record]
    assert job.status is JobStatus.COMPLETED
    assert (job.completed, job.scored) == (10, 10)
    assert job.mean_score == pytest.approx((5 * 2 + 5 * 4) / 10)
    assert job.started_at == 1.0


async def test_restart_resumes_a_job_left_running(tmp_path: Path) -> None:
    """Stop a service mid-job; a new one on the same database finishes it, each item once."""
    slow = engine(capacity=2, delay=0.05)
    async with running_service(tmp_path, slow, batch_size=2) as service:
        sub = await service.submit(items(30))
        await wait_until(lambda: slow_done(service, sub.job.id, 6), what="6 items graded")
    before = len(slow.requests)
    fast = engine(capacity=4)
    async with running_service(tmp_path, fast, batch_size=2) as service:
        events = await collect(service, sub.job.id)
        job = await service.get(sub.job.id)
        records = [r async for r in _records(service, sub.job.id)]
    assert job.status is JobStatus.COMPLETED and job.completed == 30
    assert len({r["id_alumno"] for r in records}) == 30
    ids = batch_ids(events)
    assert sorted(ids) == sorted(r["id_alumno"] for r in records)
    # Items in flight when the first service stopped are graded again; finished ones never.
    assert len(fast.requests) <= 30 - 6
    assert len(fast.requests) + before >= 30


async def slow_done(service, job_id, n):  # noqa: ANN001, ANN201
    return (await service.get(job_id)).completed >= n


async def _records(service, job_id):  # noqa: ANN001, ANN202
    _, chunks = await service.export(job_id, "jsonl")
    import json

    async for chunk in chunks:
        for line in chunk.splitlines():
            yield json.loads(line)


async def test_cancel_a_running_job_aborts_in_flight_items(tmp_path: Path) -> None:
    eng = engine(capacity=2, delay=0.3)
    async with running_service(tmp_path, eng, batch_size=1) as service:
        sub = await service.submit(items(20))
        events: list = []

        async def follow() -> None:
            async for e in service.follow(sub.job.id):
                events.append(e)

        follower = asyncio.create_task(follow())
        await wait_until(lambda: any(e.type == "batch_complete" for e in events),
                         what="a batch_complete event")
        job = await service.cancel(sub.job.id)
        await asyncio.wait_for(follower, 5)
        with pytest.raises(ConflictError, match="already cancelled"):
            await service.cancel(sub.job.id)
        records = [r async for r in _records(service, sub.job.id)]
        assert service.active_jobs() == 0

    assert job.status is JobStatus.CANCELLED and job.finished_at is not None
    assert events[-1].type == "cancelled" and events[-1].data["status"] == "cancelled"
    assert 1 <= job.completed < 20
    assert len(records) == job.completed == events[-1].data["completed"]
    assert sorted(batch_ids(events)) == sorted(r["id_alumno"] for r in records)
    assert eng.in_flight == 0
    assert len(eng.requests) < 20


async def test_cancel_a_queued_job(tmp_path: Path) -> None:
    eng = engine(capacity=1, delay=0.05)
    async with running_service(tmp_path, eng, max_concurrent_jobs=1) as service:
        first = await service.submit(items(4))
        second = await service.submit(items(4))
        job = await service.cancel(second.job.id)
        events = await collect(service, second.job.id)
        await collect(service, first.job.id)
    assert job.status is JobStatus.CANCELLED and job.completed == 0
    assert [e.type for e in events] == ["cancelled"]
    assert len(eng.requests) == 4


async def test_cancel_unknown_job_is_not_found(tmp_path: Path) -> None:
    async with running_service(tmp_path, engine()) as service:
        with pytest.raises(NotFoundError):
            await service.cancel("nope")


async def test_unparseable_answers_become_unscored_items(tmp_path: Path) -> None:
    eng = engine(script=lambda req: "no sé")
    async with running_service(tmp_path, eng) as service:
        sub = await service.submit(items(2))
        events = await collect(service, sub.job.id)
    results = events[0].data["results"]
    assert [r["status"] for r in results] == ["unscored", "unscored"]
    assert all(r["nota"] is None and r["raw"] == "no sé" and r["reason"] for r in results)
    assert events[-1].data["unscored"] == 2 and events[-1].data["scored"] == 0


async def test_a_gone_engine_fails_the_job_with_an_error_event(tmp_path: Path) -> None:
    """The engine being gone (`EngineUnavailableError`) is a job-level cause: the job fails."""
    def gone(req):  # noqa: ANN001, ANN202
        raise EngineUnavailableError("the engine is closing")

    async with running_service(tmp_path, engine(script=gone)) as service:
        sub = await service.submit(items(3))
        events = await collect(service, sub.job.id)
        job = await service.get(sub.job.id)
    assert events[-1].type == "error" and events[-1].final
    assert events[-1].data["error"] == {"message": "the engine is closing",
                                        "type": "server_error", "code": "engine_unavailable"}
    assert job.status is JobStatus.FAILED and job.error["code"] == "engine_unavailable"


async def test_item_and_finish_hooks(tmp_path: Path) -> None:
    seen_jobs = []

    def length(job: Job, item, record):  # noqa: ANN001, ANN202
        seen_jobs.append(job.options.metrics)
        return {"chars": len(item["respuesta"])}

    async def broken_item_hook(job, item, record):  # noqa: ANN001, ANN202
        raise ValueError("boom")

    async def summary(job, records):  # noqa: ANN001, ANN202
        return [{"event": "metrics", "data": {"n": len(records), "chars": records[0]["chars"]}}]

    async def failing(job, records):  # noqa: ANN001, ANN202
        raise RuntimeError("tracking down")

    async with running_service(tmp_path, engine(), item_hooks=[length, broken_item_hook],
                               finish_hooks=[summary, failing]) as service:
        sub = await service.submit(items(4), metrics=["rouge_l"], track={"experiment": "x"})
        events = await collect(service, sub.job.id)
        job = await service.get(sub.job.id)

    assert [e.type for e in events] == ["batch_complete", "batch_complete", "metrics", "error",
                                        "complete"]
    record = events[0].data["results"][0]
    assert record["chars"] == len(items(1)[0]["respuesta"])
    assert record["hook_errors"] == ["broken_item_hook: boom"]
    assert events[2].data == {"n": 4, "chars": record["chars"]}
    assert events[3].data["hook"] == "failing"
    assert "tracking down" in events[3].data["error"]["message"]
    assert not events[3].final
    assert job.status is JobStatus.COMPLETED
    assert job.options.metrics == ["rouge_l"] and job.options.track == {"experiment": "x"}
    assert seen_jobs == [["rouge_l"]] * 4


async def test_expired_jobs_are_swept(tmp_path: Path) -> None:
    now = [1000.0]
    async with running_service(tmp_path, engine(), clock=lambda: now[0],
                               job_ttl_seconds=60) as service:
        old = await service.submit(items(2))
        await collect(service, old.job.id)
        now[0] += 30
        recent = await service.submit(items(1))
        await collect(service, recent.job.id)
        queued_forever = await service.submit(items(1))
        await service.cancel(queued_forever.job.id)  # finished at 1030 too
        now[0] += 29
        assert await service.runner.sweep() == []
        now[0] += 2
        assert await service.runner.sweep() == [old.job.id]
        with pytest.raises(NotFoundError, match="expired"):
            await service.get(old.job.id)
        assert (await service.get(recent.job.id)).status is JobStatus.COMPLETED
        now[0] += 30
        assert sorted(await service.runner.sweep()) == sorted([recent.job.id,
                                                               queued_forever.job.id])
        assert await service.list() == []


async def test_answers_follow_the_scale(tmp_path: Path) -> None:
    scores = iter([0, 5, 3])
    eng = engine(script=lambda req: answer(next(scores)), capacity=1)
    async with running_service(tmp_path, eng) as service:
        sub = await service.submit(items(3))
        events = await collect(service, sub.job.id)
    assert [r["nota"] for r in events[0].data["results"]] == [0, 5, 3]
    assert events[-1].data["mean_score"] == pytest.approx(8 / 3, abs=1e-3)


async def test_the_scheduler_survives_store_errors(tmp_path: Path) -> None:
    """Regression: `_schedule` had no error handling: one read error killed it and every later
    job stayed queued (while POST /evaluate still answered 200). It logs, backs off, retries."""
    async with running_service(tmp_path, engine(), start=False) as service:
        real = service.store.runnable_jobs
        calls = []

        async def flaky(limit: int, **kwargs: float) -> list[Job]:
            calls.append(limit)
            if len(calls) <= 3:
                raise sqlite3.OperationalError("disk I/O error")
            return await real(limit, **kwargs)

        waited: list[float] = []

        async def sleep(seconds: float) -> None:
            waited.append(seconds)
            await asyncio.sleep(0)

        service.store.runnable_jobs = flaky
        service.runner.store_retry.sleep = sleep
        await service.runner.start()
        sub = await service.submit(items(3))
        events = await collect(service, sub.job.id, timeout=10)
    assert events[-1].type == "complete" and events[-1].data["completed"] == 3
    assert len(calls) >= 4
    assert len(waited) == 3 and waited == sorted(waited)  # backing off, longer each time


async def test_another_owners_job_starts_when_max_concurrent_jobs_is_reached(
        tmp_path: Path) -> None:
    """Regression (fair scheduling): with MAX_CONCURRENT_JOBS running jobs of one owner, another
    owner's job stayed queued behind all of them. An owner with nothing running gets one
    started; the first owner's further jobs still wait."""
    eng = GatedEngine(lambda r: answer(), capacity=4)
    async with running_service(tmp_path, eng, max_concurrent_jobs=1) as service:
        a1 = await service.submit(items(2), owner="a")
        a2 = await service.submit(items(2), owner="a")
        b1 = await service.submit(items(2), owner="b")
        await wait_until(async_status(service, b1.job.id, JobStatus.RUNNING), timeout=5,
                         what="b's job running")
        assert (await service.get(a1.job.id)).status is JobStatus.RUNNING
        assert (await service.get(a2.job.id)).status is JobStatus.QUEUED
        eng.gate.set()
        for sub in (a1, a2, b1):
            assert (await collect(service, sub.job.id))[-1].type == "complete"


class _Timed(ScriptedEngine):
    """A fixed latency per item; remembers which job each request served (by its item id)."""

    def __init__(self, latency: float, capacity: int) -> None:
        super().__init__(lambda r: answer(), capacity=capacity, delay=latency)
        self.in_flight_of: dict[str, int] = {}
        self.peak_of: dict[str, int] = {}

    async def generate(self, request):  # noqa: ANN001, ANN201
        who = "small" if "llum S(" in request_text(request) else "big"
        self.in_flight_of[who] = self.in_flight_of.get(who, 0) + 1
        self.peak_of[who] = max(self.peak_of.get(who, 0), self.in_flight_of[who])
        try:
            return await super().generate(request)
        finally:
            self.in_flight_of[who] -= 1


def _small_items(n: int) -> list[dict]:
    return [{**item, "respuesta": f"Les plantes fan menjar amb la llum S({i})."}
            for i, item in enumerate(items(n))]


async def test_a_small_job_behind_another_owners_big_job_takes_at_most_twice_its_time(
        tmp_path: Path) -> None:
    """Regression (fair scheduling, benchmarks/fairness.py in small): jobs took engine slots
    FIFO per job, so another caller's big job held the engine. Slots go round-robin across
    owners: a 10-item job submitted behind a 400-item job of another owner gets half the
    engine at once and finishes in at most twice its time alone."""
    latency, capacity = 0.1, 4
    eng = _Timed(latency, capacity)
    async with running_service(tmp_path, eng, batch_size=10) as service:
        await collect(service, (await service.submit(items(1), owner="b")).job.id)  # warm up
        t0 = time.perf_counter()
        alone = await service.submit(_small_items(10), owner="b")
        await collect(service, alone.job.id)
        alone_s = time.perf_counter() - t0
        eng.peak_of.clear()
        big = await service.submit(items(400), owner="a")
        await wait_until(lambda: eng.in_flight_of.get("big") == capacity, what="big running")
        t0 = time.perf_counter()
        small = await service.submit(_small_items(10), owner="b")
        await collect(service, small.job.id)
        shared_s = time.perf_counter() - t0
        assert (await service.get(big.job.id)).status is JobStatus.RUNNING
        await service.cancel(big.job.id)
    assert eng.peak_of["small"] == capacity // 2
    assert shared_s <= 2 * alone_s, (shared_s, alone_s)


async def test_a_job_pauses_while_the_store_cannot_write(tmp_path: Path) -> None:
    """Defect (issue 11, item 6): a job kept grading while the disk was full, its results
    piling up in memory; it now waits for the store before starting each item."""
    eng = engine(capacity=4)
    async with running_service(tmp_path, eng) as service:
        writer = service.runner._writer
        gate, asked = asyncio.Event(), asyncio.Event()

        async def full_disk() -> None:
            asked.set()
            await gate.wait()

        writer.wait_writable = full_disk
        sub = await service.submit(items(5))
        await asyncio.wait_for(asked.wait(), 10)
        assert eng.requests == []  # asked before its first item: nothing graded meanwhile
        assert (await service.get(sub.job.id)).status is JobStatus.RUNNING
        gate.set()
        events = await collect(service, sub.job.id)
    assert events[-1].type == "complete" and events[-1].data["scored"] == 5
    assert len(eng.requests) == 5


async def test_clean_stops_do_not_count_as_attempts(tmp_path: Path) -> None:
    """Defect: a clean stop left the job `running`, so each restart counted a start attempt
    and a long job spanning MAX_JOB_ATTEMPTS ordinary restarts was failed as a poison job."""
    job_id = ""
    for stop in range(1, 5):  # more stops than MAX_JOB_ATTEMPTS
        slow = engine(capacity=2, delay=0.05)
        async with running_service(tmp_path, slow, max_job_attempts=3) as service:
            if not job_id:
                job_id = (await service.submit(items(40))).job.id
            await wait_until(lambda: slow_done(service, job_id, 2 * stop),  # noqa: B023
                             what="some more items graded")
        stopped = await _job_after_stop(tmp_path, job_id)
        assert (stopped.status, stopped.attempts) == (JobStatus.QUEUED, 0)
    async with running_service(tmp_path, engine(capacity=4), max_job_attempts=3) as service:
        events = await collect(service, job_id)
    assert events[-1].type == "complete" and events[-1].data["completed"] == 40


async def _job_after_stop(tmp_path: Path, job_id: str) -> Job:
    from evalserve.jobs.sqlite import SQLiteJobStore

    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.open()
    try:
        return await store.get_job(job_id)
    finally:
        await store.close()
