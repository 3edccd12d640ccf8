"""`GET /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/results` and `DELETE /jobs/{id}` on a
scripted judge: bodies, filters, formats and the error envelopes."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest

from evalserve.errors import UpstreamError
from evalserve.settings import Settings
from tests.fakes import GatedEngine, ScriptedEngine, request_text
from tests.jobs.helpers import answer, items
from tests.server.openai_app import make_settings, running_app
from tests.server.test_sse import parse_events


async def _finished(client: httpx.AsyncClient, n: int) -> str:
    """Submit `n` items and follow the stream to the end; the job id."""
    body = (await client.post("/evaluate", json={"items": items(n)})).json()
    await client.get(body["stream_url"])
    return body["job_id"]


async def test_get_job_shows_counts_timings_rubric_and_mean(settings: Settings) -> None:
    async with running_app(settings, ScriptedEngine(lambda r: answer(3))) as (_, client):
        job_id = await _finished(client, 2)
        resp = await client.get(f"/jobs/{job_id}")
    assert resp.status_code == 200
    view = resp.json()
    assert (view["job_id"], view["status"], view["rubric"]) == (job_id, "completed",
                                                                "teacher-eval-ca")
    assert view["counts"] == {"total": 2, "completed": 2, "scored": 2, "unscored": 0,
                              "errors": 0, "percentage": 100.0}
    assert view["mean_score"] == 3.0 and view["error"] is None
    assert view["timings"]["finished_at"] is not None and view["timings"]["elapsed_seconds"] >= 0
    assert (view["stream_url"], view["results_url"]) == (f"/stream/{job_id}",
                                                         f"/jobs/{job_id}/results")


async def test_list_is_newest_first_with_status_filter_and_limit(settings: Settings) -> None:
    async with running_app(settings, ScriptedEngine(lambda r: answer())) as (_, client):
        first = await _finished(client, 1)
        second = await _finished(client, 1)
        everything = (await client.get("/jobs")).json()
        one = (await client.get("/jobs", params={"limit": 1})).json()
        completed = (await client.get("/jobs", params={"status": "completed"})).json()
        queued = (await client.get("/jobs", params={"status": "queued"})).json()
        bad_status = await client.get("/jobs", params={"status": "done"})
        bad_limit = await client.get("/jobs", params={"limit": 0})
    assert [j["job_id"] for j in everything["jobs"]] == [second, first]
    assert [j["job_id"] for j in one["jobs"]] == [second]
    assert [j["job_id"] for j in completed["jobs"]] == [second, first]
    assert queued == {"jobs": []}
    assert bad_status.status_code == bad_limit.status_code == 422
    assert "status" in bad_status.json()["error"]["message"]
    assert "limit" in bad_limit.json()["error"]["message"]


async def test_results_as_json_jsonl_and_csv(settings: Settings) -> None:
    async with running_app(settings, ScriptedEngine(lambda r: answer(4))) as (_, client):
        job_id = await _finished(client, 3)
        as_json = await client.get(f"/jobs/{job_id}/results")
        as_jsonl = await client.get(f"/jobs/{job_id}/results", params={"format": "jsonl"})
        as_csv = await client.get(f"/jobs/{job_id}/results", params={"format": "csv"})
        bad = await client.get(f"/jobs/{job_id}/results", params={"format": "xml"})
    body = as_json.json()
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.headers["content-disposition"] == f'inline; filename="{job_id}.json"'
    assert (body["job_id"], body["status"], body["total"], body["completed"]) == (
        job_id, "completed", 3, 3)
    ids = [r["id_alumno"] for r in body["results"]]
    assert ids == ["A000", "A001", "A002"]  # by item order
    assert as_jsonl.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line) for line in as_jsonl.text.splitlines()] == body["results"]
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.headers["content-disposition"] == f'inline; filename="{job_id}.csv"'
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["id_alumno"], r["nota"]) for r in rows] == [("A000", "4"), ("A001", "4"),
                                                           ("A002", "4")]
    assert bad.status_code == 422 and "format" in bad.json()["error"]["message"]


async def test_cancel_a_queued_job_then_409(settings: Settings) -> None:
    engine = GatedEngine(lambda r: answer())
    conf = make_settings(settings, max_concurrent_jobs=1)
    async with running_app(conf, engine) as (_, client):
        running = (await client.post("/evaluate", json={"items": items(1)})).json()["job_id"]
        queued = (await client.post("/evaluate", json={"items": items(2)})).json()["job_id"]
        cancelled = await client.delete(f"/jobs/{queued}")
        again = await client.delete(f"/jobs/{queued}")
        results = (await client.get(f"/jobs/{queued}/results")).json()
        engine.gate.set()
        await client.get(f"/stream/{running}")
    assert cancelled.status_code == 200
    view = cancelled.json()
    assert (view["job_id"], view["status"], view["counts"]["completed"]) == (
        queued, "cancelled", 0)
    assert view["timings"]["finished_at"] is not None
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert "already cancelled" in again.json()["error"]["message"]
    assert (results["status"], results["results"]) == ("cancelled", [])


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/jobs/nope"), ("GET", "/jobs/nope/results"), ("DELETE", "/jobs/nope"),
    ("POST", "/jobs/nope/retry")])
async def test_an_unknown_job_is_a_404_envelope(settings: Settings, method: str,
                                                path: str) -> None:
    async with running_app(settings) as (_, client):
        resp = await client.request(method, path)
    assert resp.status_code == 404
    error = resp.json()["error"]
    assert error["code"] == "not_found" and "nope" in error["message"]


async def test_job_routes_need_the_token(settings: Settings) -> None:
    async with running_app(make_settings(settings, api_token="s3cret")) as (_, client):
        statuses = {(await client.request(m, p)).status_code
                    for m, p in [("GET", "/jobs"), ("GET", "/jobs/x"),
                                 ("GET", "/jobs/x/results"), ("DELETE", "/jobs/x"),
                                 ("POST", "/jobs/x/retry")]}
    assert statuses == {401}


class _Flaky:
    """Fails every item whose answer mentions one of `failing` with an upstream 502."""

    def __init__(self, *failing: str) -> None:
        self.failing = set(failing)
        self.calls = 0

    def __call__(self, request) -> str:  # noqa: ANN001
        self.calls += 1
        text = request_text(request)
        if any(f"({i})" in text for i in self.failing):
            raise UpstreamError("upstream 502: bad gateway")
        return answer(4)


async def test_retry_grades_the_error_items_again_and_the_stream_goes_on(
        settings: Settings) -> None:
    """Regression (items fail alone, POST /jobs/{id}/retry): a finished job's error items are
    queued again; their new results replace the old ones once; the stream carries the new
    batches and a new final event; 409 when there is nothing to retry."""
    script = _Flaky("1", "2")
    conf = make_settings(settings, item_retries=0, batch_size=10)
    async with running_app(conf, ScriptedEngine(script)) as (_, client):
        job_id = await _finished(client, 4)
        before = (await client.get(f"/jobs/{job_id}")).json()
        script.failing = {"2"}  # item 1 recovers, item 2 still fails
        retried = await client.post(f"/jobs/{job_id}/retry")
        stream = parse_events((await client.get(f"/stream/{job_id}")).text)
        after = (await client.get(f"/jobs/{job_id}")).json()
        results = (await client.get(f"/jobs/{job_id}/results")).json()["results"]
        script.failing = set()
        unscored_too = await client.post(f"/jobs/{job_id}/retry", params={"unscored": "true"})
        await client.get(f"/stream/{job_id}")
        nothing = await client.post(f"/jobs/{job_id}/retry")
        calls = script.calls
    assert before["status"] == "completed"
    assert before["counts"] == {"total": 4, "completed": 4, "scored": 2, "unscored": 0,
                                "errors": 2, "percentage": 100.0}
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["counts"]["completed"]) == ("queued", 2)
    # Stored events replayed: the first run's batch, then the retry's, then one final event.
    assert [f["event"] for f in stream] == ["batch_complete", "batch_complete", "complete"]
    assert [r["id_alumno"] for r in stream[1]["data"]["results"]] == ["A001", "A002"]
    assert stream[-1]["data"]["errors"] == 1 and stream[-1]["data"]["scored"] == 3
    assert after["counts"]["errors"] == 1 and after["counts"]["scored"] == 3
    assert [(r["id_alumno"], r["status"]) for r in results] == [
        ("A000", "scored"), ("A001", "scored"), ("A002", "error"), ("A003", "scored")]
    assert results[2]["error"]["code"] == "bad_gateway"
    assert unscored_too.status_code == 200
    assert nothing.status_code == 409
    assert nothing.json()["error"] == {"message": f"job {job_id} has no error items to retry",
                                       "type": "invalid_request_error", "code": "conflict"}
    assert calls == 4 + 2 + 1  # each retried item graded once more


async def test_retry_of_a_running_job_is_409(settings: Settings) -> None:
    engine = GatedEngine(lambda r: answer())
    async with running_app(settings, engine) as (_, client):
        job_id = (await client.post("/evaluate", json={"items": items(1)})).json()["job_id"]
        resp = await client.post(f"/jobs/{job_id}/retry")
        engine.gate.set()
        await client.get(f"/stream/{job_id}")
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "conflict"
    assert "only a finished job's items can be retried" in resp.json()["error"]["message"]


async def test_agreement_route_report_in_the_view_and_other_callers_get_404(
        settings: Settings) -> None:
    """Issue 14: `GET /jobs/{id}/agreement` answers the stored report's agreement section;
    like every job route it is the caller's own (another key gets the not-found 404)."""
    graded = [{**item, "human_score": 4} for item in items(3)]
    conf = make_settings(settings, api_token="k1,k2")
    async with running_app(conf, ScriptedEngine(lambda r: answer(4))) as (_, client):
        k1, k2 = {"Authorization": "Bearer k1"}, {"Authorization": "Bearer k2"}
        body = (await client.post("/evaluate", json={"items": graded}, headers=k1)).json()
        await client.get(body["stream_url"], headers=k1)
        job_id = body["job_id"]
        view = (await client.get(f"/jobs/{job_id}", headers=k1)).json()
        mine = await client.get(f"/jobs/{job_id}/agreement", headers=k1)
        theirs = await client.get(f"/jobs/{job_id}/agreement", headers=k2)
        listed = (await client.get("/jobs", headers=k1)).json()["jobs"]
    assert mine.status_code == 200
    assert mine.json()["score"] == view["report"]["agreement"]["score"]
    assert (mine.json()["score"]["n"], mine.json()["score"]["exact"]) == (3, 1.0)
    assert theirs.status_code == 404
    assert theirs.json()["error"]["message"] == (
        f"no job {job_id!r}: it never existed or it expired (finished jobs are kept "
        "JOB_TTL_SECONDS)")
    assert listed[0]["report"] is None  # listings leave reports out (read the job)
