"""`JobService`, the job API of the routes and the CLI: `from_settings` wiring, what `submit`
checks before storing anything, the time estimate, reading, following, exporting. (How the
runner grades the jobs: tests/jobs/test_runner.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.errors import EngineUnavailableError, InvalidInputError, NotFoundError
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.models import JobStatus
from evalserve.jobs.service import JobService, database_path
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.settings import Settings
from tests.jobs.helpers import answer, collect, engine, item, items, running_service
from tests.waiting import wait_until


def test_the_database_lives_in_the_data_dir(tmp_path: Path) -> None:
    assert database_path(tmp_path) == tmp_path / "evalserve.db"
    assert database_path(str(tmp_path)) == tmp_path / "evalserve.db"  # type: ignore[arg-type]


async def test_from_settings_wires_store_limits_and_runner(settings: Settings) -> None:
    conf = settings.model_copy(update={"max_items_per_job": 7, "max_field_chars": 50,
                                       "sse_polling_interval": 0.3, "batch_size": 4,
                                       "max_concurrent_jobs": 2})
    eng = engine()
    service = JobService.from_settings(conf, eng)
    assert isinstance(service.store, SQLiteJobStore)
    assert service.store.path == database_path(conf.data_dir)
    assert (service.max_items, service.max_field_chars, service.poll_interval) == (7, 50, 0.3)
    assert (service.runner.config.batch_size, service.runner.config.max_concurrent_jobs) == (4, 2)
    assert isinstance(service.kit, JudgeKit) and service.engine is eng
    await service.start()
    try:
        sub = await service.submit(items(2))
        events = await collect(service, sub.job.id)
    finally:
        await service.close()
    assert events[-1].type == "complete"
    assert database_path(conf.data_dir).is_file()


async def test_from_settings_takes_a_kit_and_hooks(settings: Settings) -> None:
    kit = JudgeKit()

    def hook(job, item, record):  # noqa: ANN001, ANN202
        return {}

    service = JobService.from_settings(settings, engine(), kit=kit, item_hooks=[hook])
    assert service.kit is kit
    assert list(service.runner.item_hooks) == [hook]


async def test_submit_stores_a_queued_job_with_its_rubric_and_options(tmp_path: Path) -> None:
    async with running_service(tmp_path, engine(), start=False) as service:
        sub = await service.submit(items(3), track={"experiment": "x"})
        stored = await service.get(sub.job.id)
        pending = await service.store.pending_items(sub.job.id, -1, 10)
        assert service.active_jobs() == 1
    assert stored.status is JobStatus.QUEUED and stored.total == 3
    assert stored.rubric_name == "teacher-eval-ca" and stored.rubric["name"] == "teacher-eval-ca"
    assert (stored.options.metrics, stored.options.track) == ([], {"experiment": "x"})
    assert [p.item_id for p in pending] == ["A000", "A001", "A002"]
    assert pending[0].data == item(0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"items": "not a list"}, "items must be a list of objects"),
    ({"items": []}, "items is empty"),
    ({"items": [item(0), item(0)]}, "repeats items[0]"),
    ({"items": [item(0), {"id_alumno": "B"}]}, "items[1] lacks the field(s)"),
    ({"items": items(1), "metrics": "rouge_l"}, "metrics must be a list of metric names"),
    ({"items": items(1), "metrics": [1]}, "metrics must be a list of metric names"),
    ({"items": items(1), "track": ["x"]}, "track must be an object of tracking options"),
    ({"items": items(1), "rubric": {"name": "broken"}}, "rubric"),
])
async def test_nothing_is_stored_when_a_submission_is_invalid(
        tmp_path: Path, kwargs: dict, message: str) -> None:
    async with running_service(tmp_path, engine(), start=False) as service:
        with pytest.raises(InvalidInputError) as info:
            await service.submit(**kwargs)
        assert await service.list() == []
    assert message in info.value.message


async def test_the_item_limits_come_from_the_service(tmp_path: Path) -> None:
    store = SQLiteJobStore(tmp_path / "jobs.db")
    eng = engine()

    async def ready():  # noqa: ANN202
        return eng

    service = JobService(store, JudgeKit(), eng, ready, max_items=2, max_field_chars=30)
    await store.open()
    try:
        with pytest.raises(InvalidInputError, match="3 items exceed the limit of 2 per job"):
            await service.submit(items(3))
        with pytest.raises(InvalidInputError, match=r"items\[0\]\.respuesta has \d+ characters"):
            await service.submit([item(0, respuesta="x" * 31)])
        assert await service.list() == []
    finally:
        await service.close()


async def test_submit_refuses_when_the_engine_failed_to_load(tmp_path: Path) -> None:
    eng = engine()

    async def broken():  # noqa: ANN202
        raise RuntimeError("no GPU")

    service = JobService(SQLiteJobStore(tmp_path / "jobs.db"), JudgeKit(), eng, broken)
    await service.start()
    try:
        await wait_until(lambda: service.runner.engine_error is not None,
                         what="the runner to see the failed load")
        with pytest.raises(EngineUnavailableError, match=r"failed to load \(no GPU\)"):
            await service.submit(items(1))
        assert await service.list() == []
    finally:
        await service.close()


async def test_estimate_uses_measured_throughput(tmp_path: Path) -> None:
    async with running_service(tmp_path, engine(delay=0.01), time_estimation_per_item=7) as svc:
        first = await svc.submit(items(3))
        assert first.estimated_time_seconds == 21
        await collect(svc, first.job.id)
        second = await svc.submit(items(300))
        assert second.estimated_time_seconds < 300 * 7 / 10
        await svc.cancel(second.job.id)


async def test_list_filters_by_status_newest_first(tmp_path: Path) -> None:
    async with running_service(tmp_path, engine()) as service:
        done = await service.submit(items(1))
        await collect(service, done.job.id)
        later = await service.submit(items(1))
        await service.cancel(later.job.id)
        assert [j.id for j in await service.list()] == [later.job.id, done.job.id]
        assert [j.id for j in await service.list(JobStatus.COMPLETED)] == [done.job.id]
        assert [j.id for j in await service.list(limit=1)] == [later.job.id]


async def test_follow_replays_from_an_event_id(tmp_path: Path) -> None:
    async with running_service(tmp_path, engine(), batch_size=1) as service:
        sub = await service.submit(items(3))
        everything = await collect(service, sub.job.id)
        after_two = await collect(service, sub.job.id, after=2)
    assert [e.id for e in everything] == [1, 2, 3, 4]
    assert after_two == everything[2:]


async def test_export_checks_the_format_and_the_job(tmp_path: Path) -> None:
    async with running_service(tmp_path, engine()) as service:
        sub = await service.submit(items(2))
        await collect(service, sub.job.id)
        job, chunks = await service.export(sub.job.id, "jsonl")
        lines = "".join([c async for c in chunks]).splitlines()
        with pytest.raises(InvalidInputError, match="format='xml': use one of json, jsonl, csv"):
            await service.export(sub.job.id, "xml")
        with pytest.raises(NotFoundError):
            await service.export("nope", "json")
    assert job.id == sub.job.id and job.status is JobStatus.COMPLETED
    assert len(lines) == 2


JURY = [{"name": "first"}, {"name": "second", "rubric": "teacher-eval-ca"}]


async def test_submit_stores_the_resolved_jury_and_samples(tmp_path: Path) -> None:
    async with running_service(tmp_path, engine(), start=False) as service:
        jury = await service.submit(items(2), judges=JURY, aggregate="median")
        sampled = await service.submit(items(2), samples=3, reducer="mode")
        stored_jury = await service.get(jury.job.id)
        stored_sampled = await service.get(sampled.job.id)
    judges = stored_jury.options.judges or []
    assert [(j["name"], j["model"], j["rubric_name"]) for j in judges] == [
        ("first", "scripted", "teacher-eval-ca"), ("second", "scripted", "teacher-eval-ca")]
    assert judges[0]["rubric"] == stored_jury.rubric
    assert (stored_jury.options.aggregate, stored_jury.options.min_successful) == ("median", 2)
    assert (stored_sampled.options.samples, stored_sampled.options.reducer,
            stored_sampled.options.temperature) == (3, "mode", 0.7)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"judges": [{"model": "gpt-x"}]}, "judges[0].model 'gpt-x' is not served here; served "
                                       "models: scripted"),
    ({"judges": [{"rubric": "judge-1-5"}]}, "every judge must use the job rubric's score scale"),
    ({"samples": 2, "temperature": 0.0}, "temperature must be > 0 with samples=2"),
    ({"judges": JURY, "samples": 2, "temperature": 0.0}, "temperature must be > 0 with samples=2"),
])
async def test_nothing_is_stored_when_the_jury_or_samples_are_invalid(
        tmp_path: Path, kwargs: dict, message: str) -> None:
    eng = engine()
    async with running_service(tmp_path, eng, start=False) as service:
        with pytest.raises(InvalidInputError) as info:
            await service.submit(items(1), **kwargs)
        assert await service.list() == []
    assert message in info.value.message
    assert eng.requests == []


def _by_seed(request: GenerationRequest) -> str:
    return answer(2 + (request.seed or 0) % 4)


async def test_a_jury_job_resumed_after_a_restart_grades_with_its_jury(tmp_path: Path) -> None:
    """The options are stored with the job: a service that did not see the submission grades
    the queued job with its jury (the runner builds the grader from `job.options`)."""
    async with running_service(tmp_path, engine(), start=False) as service:
        sub = await service.submit(items(2), judges=JURY, aggregate="mean")
    eng = engine()
    async with running_service(tmp_path, eng) as service:
        events = await collect(service, sub.job.id)
        rows = [r for e in events if e.type == "batch_complete" for r in e.data["results"]]
    assert events[-1].data["status"] == "completed"
    assert len(eng.requests) == 4  # 2 items x 2 judges
    assert {(r["nota"], r["status"], r["judges_successful"]) for r in rows} == {
        (4.0, "scored", 2)}
    assert [j["judge"] for j in rows[0]["judges"]] == ["first", "second"]


async def test_a_sampled_job_records_its_samples(tmp_path: Path) -> None:
    eng = engine(script=_by_seed)
    async with running_service(tmp_path, eng) as service:
        sub = await service.submit(items(1), samples=3, reducer="median")
        events = await collect(service, sub.job.id)
    [row] = [r for e in events if e.type == "batch_complete" for r in e.data["results"]]
    # seeds 0, 3, 6 (JudgeKit's retries=2): scores 2, 5, 4
    assert (row["samples"], row["nota"], row["reducer"]) == ([2, 5, 4], 4, "median")
    assert row["spread"] == pytest.approx(((2 - 11 / 3) ** 2 + (5 - 11 / 3) ** 2
                                           + (4 - 11 / 3) ** 2) ** 0.5 / 3 ** 0.5, rel=1e-12)
