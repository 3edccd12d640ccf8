"""Storage faults end to end: a real `JobService` on a scripted engine and a real SQLite file
grades 50 items while its disk fills up midway (and frees again), or while one group commit
fails. What the stream announced and what the store exports are compared: every announced
result is stored (already when it is announced), every stored result is announced exactly
once, and the job completes with every item."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from evalserve.engines.base import GenerationRequest, GenerationResult
from evalserve.errors import StorageFullError, error_body
from evalserve.jobs.config import RunnerConfig
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.models import Job, JobEvent, JobStatus
from evalserve.jobs.service import JobService
from tests.fakes import ScriptedEngine
from tests.jobs.disk import DiskStore
from tests.jobs.helpers import answer, item
from tests.waiting import wait_until

TOTAL = 50
MIDWAY = 20


class MidwayEngine(ScriptedEngine):
    """Answers the first `MIDWAY` items at once; the others once `gate` opens."""

    def __init__(self) -> None:
        # Long feedback: every result needs room in the database file.
        super().__init__(lambda req: answer(feedback="Bon treball. " * 150), capacity=4)
        self.gate = asyncio.Event()
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.calls += 1
        if self.calls > MIDWAY:
            await self.gate.wait()
        return await super().generate(request)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[JobService]:
    engine = MidwayEngine()

    async def ready() -> MidwayEngine:
        return engine

    service = JobService(DiskStore(tmp_path / "jobs.db"), JudgeKit(), engine, ready,
                         RunnerConfig(batch_size=4), poll_interval=0.05)
    await service.start()
    try:
        yield service
    finally:
        await service.close()


def _items(n: int) -> list[dict]:
    return [item(i, respuesta="Les plantes fan menjar amb la llum. " * 40) for i in range(n)]


async def _follow(service: JobService, job_id: str) -> list[JobEvent]:
    """Every event of the job; each batch's results are checked stored when it arrives."""
    events = []
    async for event in service.follow(job_id):
        if event.type == "batch_complete":
            stored = {r["id_alumno"] for _, r in await service.store.records(job_id)}
            announced = {r["id_alumno"] for r in event.data["results"]}
            assert announced <= stored, f"announced before stored: {announced - stored}"
        events.append(event)
    return events


async def _exported(service: JobService, job_id: str) -> list[str]:
    """The ids of the job's stored results, as `GET /jobs/{id}/results?format=jsonl` has them."""
    _, chunks = await service.export(job_id, "jsonl")
    text = "".join([chunk async for chunk in chunks])
    return [json.loads(line)["id_alumno"] for line in text.splitlines() if line]


def _announced(events: list[JobEvent]) -> list[str]:
    return [r["id_alumno"] for e in events if e.type == "batch_complete"
            for r in e.data["results"]]


async def _check_all_announced_once(service: JobService, job_id: str,
                                    events: list[JobEvent]) -> None:
    announced = _announced(events)
    exported = await _exported(service, job_id)
    assert len(announced) == len(set(announced)), "a result announced twice"
    assert sorted(announced) == sorted(exported) == sorted(f"A{i:03d}" for i in range(TOTAL))
    assert events[-1].type == "complete" and events[-1].data["completed"] == TOTAL
    job = await service.get(job_id)
    assert (job.status, job.completed, job.scored) == (JobStatus.COMPLETED, TOTAL, TOTAL)
    assert await service.store.unannounced_results(job_id) == []


async def test_a_disk_full_midway_pauses_the_job_which_completes_once_space_is_back(
        service: JobService) -> None:
    """A full disk failed the running job, its unstored rows still announced by the final
    batch, and submissions answered 500: now submissions get a 503 saying the store cannot
    write, the job pauses, and once space is back it completes with every result stored and
    announced once."""
    store, engine, job, follower = await _midway(service)
    await store.fill_disk()
    engine.gate.set()
    await wait_until(lambda: _refused_or_ended(service, job.id, 4),
                     what="four refused group commits")
    with pytest.raises(StorageFullError, match="job store cannot write.*full") as refused:
        await service.submit(_items(5))
    assert error_body(refused.value)["code"] == "storage_unavailable"
    assert refused.value.status == 503
    assert [j.id for j in await service.list()] == [job.id]
    paused = await service.get(job.id)
    assert paused.status is JobStatus.RUNNING and paused.completed < TOTAL
    assert not follower.done()
    await store.free_disk()
    events = await asyncio.wait_for(follower, 30)
    await _check_all_announced_once(service, job.id, events)
    later = (await service.submit(_items(2))).job
    assert (await service.get(later.id)).total == 2


async def test_a_group_commit_failing_once_loses_and_repeats_nothing(
        service: JobService) -> None:
    """A group commit that raised failed the whole job, and the runner's final batch
    announced the rows it never stored; now it is retried and the job completes."""
    store, engine, job, follower = await _midway(service)
    store.fail_commits = 1
    engine.gate.set()
    events = await asyncio.wait_for(follower, 30)
    assert store.injected == 1
    await _check_all_announced_once(service, job.id, events)


async def _midway(service: JobService) -> tuple[DiskStore, MidwayEngine, Job,
                                                asyncio.Task[list[JobEvent]]]:
    """Submit a `TOTAL`-item job, follow its stream, and wait until `MIDWAY` are stored."""
    store, engine = service.store, service.engine
    assert isinstance(store, DiskStore) and isinstance(engine, MidwayEngine)
    job = (await service.submit(_items(TOTAL))).job
    follower = asyncio.create_task(_follow(service, job.id))
    await wait_until(lambda: _completed(service, job.id, MIDWAY), what=f"{MIDWAY} stored")
    return store, engine, job, follower


async def _completed(service: JobService, job_id: str, n: int) -> bool:
    return (await service.get(job_id)).completed >= n


async def _refused_or_ended(service: JobService, job_id: str, n: int) -> bool:
    assert isinstance(service.store, DiskStore)
    return service.store.refused >= n or (await service.get(job_id)).status.finished


async def test_a_cancel_while_the_disk_is_full_answers_instead_of_hanging(
        service: JobService) -> None:
    """Defect: `DELETE /jobs/{id}` waited until the job's end was stored, which on a full
    disk meant until space was back; it now answers 503 saying the cancel stands and will be
    stored, and the job ends `cancelled` once the store writes again."""
    store = service.store
    assert isinstance(store, DiskStore)
    job = (await service.submit(_items(TOTAL))).job
    await wait_until(lambda: _completed(service, job.id, MIDWAY), what=f"{MIDWAY} stored")
    store.refuse_all = True
    with pytest.raises(StorageFullError, match="is cancelled, but the job store cannot write"):
        await asyncio.wait_for(service.cancel(job.id), 30)
    assert (await service.get(job.id)).status is JobStatus.RUNNING
    store.refuse_all = False
    await wait_until(lambda: _status_is(service, job.id, JobStatus.CANCELLED),
                     what="the cancel stored")
    events = [e async for e in service.follow(job.id)]
    assert events[-1].type == "cancelled"


async def _status_is(service: JobService, job_id: str, status: JobStatus) -> bool:
    return (await service.get(job_id)).status is status
