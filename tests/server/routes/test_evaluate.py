"""Seed 000's `POST /evaluate` (validate, store, queue; answer at once) and
`GET /stream/{job_id}` (the job's events over SSE) on a scripted judge.

Event ids, resume and headers of the stream: tests/server/test_sse.py; the real model:
tests/e2e/test_evaluate.py.
"""

from __future__ import annotations

import httpx
import pytest

from evalserve.errors import StorageFullError
from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import FailingEngine, GatedEngine, ScriptedEngine
from tests.jobs.helpers import answer, item, items
from tests.server.openai_app import make_settings, running_app
from tests.server.test_sse import parse_events
from tests.waiting import wait_until


def judge(score: int = 4) -> ScriptedEngine:
    return ScriptedEngine(lambda r: answer(score))


async def test_evaluate_answers_with_the_job_and_its_stream_url(settings: Settings) -> None:
    async with running_app(settings, judge()) as (app, client):
        resp = await client.post("/evaluate", json={"items": items(3)})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        job = await app.state.evalserve.components.jobs.get(body["job_id"])
    assert set(body) == {"job_id", "total_items", "estimated_time_seconds", "status",
                         "stream_url"}
    assert (body["total_items"], body["status"]) == (3, "queued")
    assert body["stream_url"] == f"/stream/{body['job_id']}"
    assert isinstance(body["estimated_time_seconds"], int) and body["estimated_time_seconds"] >= 0
    assert (job.total, job.rubric_name) == (3, "teacher-eval-ca")


async def test_the_stream_carries_the_graded_results_then_complete(settings: Settings) -> None:
    async with running_app(make_settings(settings, batch_size=2), judge(5)) as (_, client):
        url = (await client.post("/evaluate", json={"items": items(3)})).json()["stream_url"]
        resp = await client.get(url)
    assert resp.status_code == 200
    frames = parse_events(resp.text)
    assert [f["event"] for f in frames] == ["batch_complete", "batch_complete", "complete"]
    results = [r for f in frames[:2] for r in f["data"]["results"]]
    assert sorted(r["id_alumno"] for r in results) == ["A000", "A001", "A002"]
    assert {(r["nota"], r["status"]) for r in results} == {(5, "scored")}
    final = frames[-1]["data"]
    assert (final["status"], final["total"], final["scored"]) == ("completed", 3, 3)
    assert final["mean_score"] == 5.0


async def test_metrics_and_track_are_stored_with_the_job(settings: Settings) -> None:
    engine = GatedEngine(lambda r: answer())
    async with running_app(settings, engine) as (app, client):
        resp = await client.post("/evaluate", json={
            "items": [item(0, reference="La fotosíntesi fa servir la llum.")],
            "metrics": ["rouge_l"], "track": {"experiment": "x"}})
        assert resp.status_code == 200, resp.text
        job = await app.state.evalserve.components.jobs.get(resp.json()["job_id"])
        engine.gate.set()
    assert (job.options.metrics, job.options.track) == (["rouge_l"], {"experiment": "x"})


async def test_a_jury_and_samples_are_stored_with_the_job(settings: Settings) -> None:
    engine = GatedEngine(lambda r: answer())
    async with running_app(settings, engine) as (app, client):
        jury = await client.post("/evaluate", json={
            "items": items(1), "aggregate": "majority", "min_successful": 1,
            "judges": [{"name": "a"}, {"model": "scripted", "rubric": "teacher-eval-ca"}]})
        sampled = await client.post("/evaluate", json={
            "items": items(1), "samples": 4, "reducer": "median", "temperature": 0.9})
        assert (jury.status_code, sampled.status_code) == (200, 200), jury.text + sampled.text
        jobs = app.state.evalserve.components.jobs
        jury_job = await jobs.get(jury.json()["job_id"])
        sampled_job = await jobs.get(sampled.json()["job_id"])
        engine.gate.set()
    judges = jury_job.options.judges or []
    assert [(j["name"], j["model"], j["rubric_name"]) for j in judges] == [
        ("a", "scripted", "teacher-eval-ca"), ("teacher-eval-ca", "scripted", "teacher-eval-ca")]
    assert (jury_job.options.aggregate, jury_job.options.min_successful) == ("majority", 1)
    assert (sampled_job.options.samples, sampled_job.options.reducer,
            sampled_job.options.temperature) == (4, "median", 0.9)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({}, 422, "items: Field required"),
    ({"items": "abc"}, 422, "items"),
    ({"items": [item(0), {"id_alumno": "B1"}]}, 422, "items[1] lacks the field(s)"),
    ({"items": items(1), "colour": "red"}, 422, "colour"),
    ({"items": items(1), "metrics": ["bleu"]}, 422, "bleu"),
    ({"items": items(1), "rubric": "no-such-rubric"}, 404, "no-such-rubric"),
    ({"items": items(1), "judges": [{"model": "gpt-x"}]}, 422,
     "judges[0].model 'gpt-x' is not served here; served models: scripted"),
    ({"items": items(1), "judges": [{"rubric": "judge-1-5"}]}, 422,
     "judges[0].rubric 'judge-1-5' scores on [1, 2, 3, 4, 5]"),
    ({"items": items(1), "judges": [{"rubric": "no-such-rubric"}]}, 422,
     "judges[0].rubric: no rubric named 'no-such-rubric'"),
    ({"items": items(1), "judges": [{"model": None, "temp": 1}]}, 422, "judges.0.temp"),
    ({"items": items(1), "judges": [{}], "aggregate": "vote"}, 422, "aggregate"),
    ({"items": items(1), "judges": [{}], "min_successful": 2}, 422,
     "min_successful must be an integer from 1 to 1"),
    ({"items": items(1), "aggregate": "median"}, 422, "aggregate applies to juries"),
    ({"items": items(1), "samples": 21}, 422, "samples"),
    ({"items": items(1), "samples": 3, "temperature": 0}, 422,
     "temperature must be > 0 with samples=3"),
    ({"items": items(1), "samples": 3, "reducer": "max"}, 422, "reducer"),
    ({"items": items(1), "judges": [{}], "samples": 2, "temperature": 0}, 422,
     "temperature must be > 0 with samples=2"),
])
async def test_a_bad_submission_is_an_envelope_and_stores_nothing(
        settings: Settings, body: dict, status: int, fragment: str) -> None:
    engine = judge()
    async with running_app(settings, engine) as (_, client):
        resp = await client.post("/evaluate", json=body)
        listed = (await client.get("/jobs")).json()
    assert resp.status_code == status, resp.text
    assert fragment in resp.json()["error"]["message"]
    assert listed == {"jobs": []}
    assert engine.requests == []


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_evaluate_refuses_jobs_when_the_model_failed_to_load(settings: Settings) -> None:
    app = build_app(settings, engine=FailingEngine(script=lambda r: answer()))
    async with app.router.lifespan_context(app), _client(app) as client:
        runner = app.state.evalserve.components.jobs.runner
        await wait_until(lambda: runner.engine_error is not None,
                         what="the job runner to see the failed load")
        resp = await client.post("/evaluate", json={"items": items(1)})
        listed = (await client.get("/jobs")).json()
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "engine_unavailable"
    assert "the model failed to load (the model failed to load: weights corrupt)" in (
        resp.json()["error"]["message"])
    assert listed == {"jobs": []}


async def test_a_job_submitted_as_the_load_fails_is_refused_not_queued_forever(
        settings: Settings) -> None:
    """Regression: POST /evaluate right after a failed model load was stored and stayed queued
    forever: it checked only the runner's engine_error, which the runner sets a few event-loop
    steps after the app's (AppState.engine_error); the service now asks the engine provider
    itself while the runner has no engine yet."""
    app = build_app(settings, engine=FailingEngine(script=lambda r: answer()))
    async with app.router.lifespan_context(app), _client(app) as client:
        await app.state.evalserve.engine_ready.wait()  # the load has failed
        resp = await client.post("/evaluate", json={"items": items(1)})
        jobs = app.state.evalserve.components.jobs
        await wait_until(lambda: jobs.runner.engine_error is not None,
                         what="the job runner to see the failed load")
        if resp.status_code == 200:  # accepted: then it must not stay queued
            await wait_until(lambda: jobs.active_jobs() == 0, timeout=1.0,
                             what="the accepted job to leave the queue")
    assert resp.status_code == 503, resp.text


async def test_evaluate_and_stream_need_the_token(settings: Settings) -> None:
    async with running_app(make_settings(settings, api_token="s3cret"), judge()) as (_, client):
        refused = await client.post("/evaluate", json={"items": items(1)})
        stream = await client.get("/stream/anything")
    assert refused.status_code == stream.status_code == 401


async def test_a_caller_with_max_queued_jobs_queued_is_refused_with_429(
        settings: Settings) -> None:
    """Regression (no bound on queued jobs): a caller could queue jobs without limit. With
    MAX_QUEUED_JOBS_PER_CALLER queued, its next submission answers 429 saying so, stores
    nothing, and other callers still submit."""
    conf = make_settings(settings, api_token="k1,k2", max_concurrent_jobs=1,
                         max_queued_jobs_per_caller=2)
    engine = GatedEngine(lambda r: answer())
    async with running_app(conf, engine) as (app, client):
        k1, k2 = {"Authorization": "Bearer k1"}, {"Authorization": "Bearer k2"}
        jobs = app.state.evalserve.components.jobs
        accepted = [await client.post("/evaluate", json={"items": items(1)}, headers=k1)]
        first = accepted[0].json()["job_id"]

        async def running() -> bool:
            return (await jobs.get(first)).status.value == "running"

        await wait_until(running, what="the first job running")
        accepted += [await client.post("/evaluate", json={"items": items(1)}, headers=k1)
                     for _ in range(2)]  # these two queue
        refused = await client.post("/evaluate", json={"items": items(1)}, headers=k1)
        other = await client.post("/evaluate", json={"items": items(1)}, headers=k2)
        listed = (await client.get("/jobs", headers=k1)).json()["jobs"]
        engine.gate.set()
    assert [r.status_code for r in accepted] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"] == {
        "message": "you already have 2 queued job(s), the most allowed "
                   "(MAX_QUEUED_JOBS_PER_CALLER=2); wait for one to start or cancel one "
                   "(DELETE /jobs/{id}), then submit again",
        "type": "rate_limit_error", "code": "rate_limit_exceeded"}
    assert len(listed) == 3  # nothing stored for the refused one
    assert other.status_code == 200


async def test_a_full_job_store_answers_503_with_its_message(settings: Settings) -> None:
    """POST /evaluate when the store cannot write (StorageFullError at create_job): 503 with
    the store's message, nothing queued."""
    async with running_app(settings, judge()) as (app, client):
        jobs = app.state.evalserve.components.jobs

        async def full(job, items):  # noqa: ANN001, ANN202
            raise StorageFullError("the job store cannot write (the disk holding DATA_DIR "
                                   "is full); free space on that disk")

        jobs.store.create_job = full
        resp = await client.post("/evaluate", json={"items": items(1)})
        active = jobs.active_jobs()
    assert resp.status_code == 503
    assert resp.json()["error"] == {
        "message": "the job store cannot write (the disk holding DATA_DIR is full); free "
                   "space on that disk", "type": "server_error", "code": "storage_unavailable"}
    assert active == 0
