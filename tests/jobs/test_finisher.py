"""The end of a job: poison jobs failed at start, a failing final commit retried (and the job
recoverable at the next start), counts with errors (jobs/finisher.py through the runner)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evalserve.jobs.models import JobStatus, ResultRow
from evalserve.jobs.store import StatusChange
from tests.jobs.helpers import collect, engine, item, items, running_service
from tests.waiting import wait_until


def _row(job_id: str, i: int) -> ResultRow:
    return ResultRow(job_id, i, f"A{i:03d}", "scored", 3,
                     {"id_alumno": f"A{i:03d}", "nota": 3, "feedback": "ok", "status": "scored"})


async def test_a_job_interrupted_max_job_attempts_times_is_failed_not_resumed(
        tmp_path: Path) -> None:
    """Regression (poison jobs): a job that was running when the process died was resumed at
    every start, so a job that crashes the process made a crash loop. After MAX_JOB_ATTEMPTS
    starts it is failed with a final `error` event saying why; its stored results are
    announced and stay readable."""
    eng = engine()
    async with running_service(tmp_path, eng, start=False, max_job_attempts=3) as service:
        poison = (await service.submit(items(4))).job.id
        fine = (await service.submit(items(2))).job.id
        await service.store.commit([_row(poison, 0)])
        for _ in range(3):  # three starts, each "interrupted"
            await service.store.commit(status=[StatusChange(poison, JobStatus.RUNNING, 1.0)])
        for _ in range(2):
            await service.store.commit(status=[StatusChange(fine, JobStatus.RUNNING, 1.0)])
        await service.runner.start()
        events = await collect(service, poison)
        job = await service.get(poison)
        resumed = await collect(service, fine)

    assert [e.type for e in events] == ["batch_complete", "error"]
    assert [r["id_alumno"] for r in events[0].data["results"]] == ["A000"]
    final = events[-1]
    assert final.final and final.data["status"] == "failed"
    assert final.data["error"] == {
        "message": "the job was interrupted 3 times (MAX_JOB_ATTEMPTS=3) and is failed instead "
                   "of resumed, in case it is what stops the server; its stored results stay "
                   "readable",
        "type": "server_error", "code": "too_many_attempts"}
    assert job.status is JobStatus.FAILED and job.error == final.data["error"]
    assert (job.completed, job.scored) == (1, 1)
    assert resumed[-1].type == "complete"  # two starts: resumed as before
    assert len(eng.requests) == 2  # only the resumed job was graded


class _FailingEnds:
    """Wraps a store's commit: a commit storing a job's end fails `times` times."""

    def __init__(self, store, times: int) -> None:  # noqa: ANN001
        self.commit = store.commit
        self.left = times
        self.failed = 0
        store.commit = self

    async def __call__(self, results=(), events=(), status=()):  # noqa: ANN001, ANN204
        if self.left and any(s.status.finished for s in status):
            self.left -= 1
            self.failed += 1
            raise OSError("disk I/O error")
        return await self.commit(results, events, status)


async def test_a_failed_final_commit_is_retried_and_the_job_ends(tmp_path: Path) -> None:
    """Regression: a failed final commit was swallowed and the job stayed `running` for ever
    (its stream never ended, /health counted it). The end is retried (the writer's retries,
    then every scheduler pass) until stored."""
    async with running_service(tmp_path, engine(), start=False) as service:
        failing = _FailingEnds(service.store, times=6)  # more than the writer's own tries
        service.runner.store_retry.sleep = _instant
        await service.runner.start()
        sub = await service.submit(items(4))
        events = await collect(service, sub.job.id)
        job = await service.get(sub.job.id)
        await wait_until(lambda: service.active_jobs() == 0, what="the job to be counted done")
    assert failing.failed == 6
    assert [e.type for e in events] == ["batch_complete", "batch_complete", "complete"]
    assert events[-1].data["completed"] == 4
    assert job.status is JobStatus.COMPLETED and job.finished_at is not None


async def test_a_job_whose_end_cannot_be_stored_is_resumed_at_the_next_start(
        tmp_path: Path) -> None:
    """If the end still cannot be stored when the process stops, the job is left `running`
    with every result stored: the next start resumes it, grades nothing again and ends it."""
    async with running_service(tmp_path, engine(), start=False) as service:
        _FailingEnds(service.store, times=10**6)
        service.runner.store_retry.sleep = _instant
        await service.runner.start()
        sub = await service.submit(items(3))
        await wait_until(lambda: sub.job.id in service.runner.finisher.unfinished,
                         what="the end to be parked")
        assert (await service.get(sub.job.id)).status is JobStatus.RUNNING
    again = engine()
    async with running_service(tmp_path, again) as service:
        events = await collect(service, sub.job.id)
        job = await service.get(sub.job.id)
    assert again.requests == []
    assert events[-1].type == "complete" and events[-1].data["completed"] == 3
    assert job.status is JobStatus.COMPLETED


async def _instant(seconds: float) -> None:
    await asyncio.sleep(0)  # no wait, but a turn for the other tasks


async def test_a_completed_job_carries_its_report_computed_off_the_event_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report (issue 14) is computed once, in a worker thread (its bootstrap takes seconds
    on 100k items), stored with the job's end and carried by the `complete` event."""
    import threading

    import evalserve.judge.report as report_module

    real, threads = report_module.job_report, []

    def spy(records, rubric, options):  # noqa: ANN001, ANN202
        threads.append(threading.current_thread())
        return real(records, rubric, options)

    monkeypatch.setattr(report_module, "job_report", spy)
    graded = [item(i, human_score=h) for i, h in enumerate([4, 3, 5, 2])]
    async with running_service(tmp_path, engine()) as service:
        sub = await service.submit(graded)
        events = await collect(service, sub.job.id)
        stored = await service.store.get_report(sub.job.id)
        records = [r for _, r in await service.store.records(sub.job.id)]
    assert threads and all(t is not threading.main_thread() for t in threads)
    report = events[-1].data["report"]
    assert report == stored == real(records, sub.job.rubric, sub.job.options.to_dict())
    assert report["agreement"]["score"]["n"] == 4
    assert report["agreement"]["score"]["exact"] == 0.25  # the scripted judge always says 4
