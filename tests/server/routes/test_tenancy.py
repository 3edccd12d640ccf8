"""Callers see only their own work: two API keys and an admin token, every route of the jobs
API tried by each key on the other's job (bodies asserted), and single-user mode shared."""

from __future__ import annotations

import httpx

from evalserve.server.auth import key_id
from evalserve.settings import Settings
from tests.fakes import GatedEngine, ScriptedEngine
from tests.jobs.helpers import answer, items
from tests.server.openai_app import make_settings, running_app
from tests.server.test_sse import parse_events


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _not_found(job_id: str) -> dict:
    return {"error": {"message": f"no job {job_id!r}: it never existed or it expired "
                                 "(finished jobs are kept JOB_TTL_SECONDS)",
                      "type": "invalid_request_error", "code": "not_found"}}


async def _submit(client: httpx.AsyncClient, token: str, n: int = 2) -> str:
    resp = await client.post("/evaluate", json={"items": items(n)}, headers=_as(token))
    assert resp.status_code == 200, resp.text
    return resp.json()["job_id"]


#: Every route of the jobs API on one job.
ROUTES = [("GET", "/jobs/{id}"), ("GET", "/jobs/{id}/results"), ("GET", "/stream/{id}"),
          ("DELETE", "/jobs/{id}"), ("POST", "/jobs/{id}/retry"),
          ("POST", "/jobs/{id}/retry?unscored=true")]


async def test_a_caller_cannot_see_or_manage_another_callers_job(settings: Settings) -> None:
    """Regression (no separation between API keys): GET /jobs listed every job, and results,
    stream, DELETE worked on any job for any valid token. Each job is owned by its caller's
    key id; another caller's job answers the same 404 as a job that does not exist."""
    conf = make_settings(settings, api_token="k1,k2", admin_api_token="root")
    async with running_app(conf, GatedEngine(lambda r: answer())) as (app, client):
        jobs = app.state.evalserve.components.jobs
        mine = {"k1": await _submit(client, "k1"), "k2": await _submit(client, "k2")}
        answers = {}
        for token, other in (("k1", "k2"), ("k2", "k1")):
            job_id = mine[other]
            for method, path in ROUTES:
                resp = await client.request(method, path.format(id=job_id), headers=_as(token))
                answers[(token, method, path)] = (resp.status_code, resp.json())
        listed = {t: (await client.get("/jobs", headers=_as(t))).json() for t in ("k1", "k2")}
        owners = {t: (await jobs.get(j)).owner for t, j in mine.items()}
        untouched = {t: (await jobs.get(j)).status.value for t, j in mine.items()}
        nothing = await client.get("/jobs/no-such-job", headers=_as("k1"))

    for (token, _, _), (status, body) in answers.items():
        other = "k2" if token == "k1" else "k1"
        assert (status, body) == (404, _not_found(mine[other])), (token, body)
    assert nothing.json() == _not_found("no-such-job")  # the same words: ids not probeable
    assert [j["job_id"] for j in listed["k1"]["jobs"]] == [mine["k1"]]
    assert [j["job_id"] for j in listed["k2"]["jobs"]] == [mine["k2"]]
    assert owners == {"k1": key_id("k1"), "k2": key_id("k2")}  # a hash, never the token
    assert set(untouched.values()) <= {"queued", "running"}  # the DELETEs cancelled nothing


async def test_each_caller_manages_its_own_job_and_an_admin_manages_all(
        settings: Settings) -> None:
    """The owner (and an ADMIN_API_TOKEN) gets, lists, reads, streams, cancels its job."""
    conf = make_settings(settings, api_token="k1,k2", admin_api_token="root",
                         max_concurrent_jobs=1)
    engine = GatedEngine(lambda r: answer())
    async with running_app(conf, engine) as (_, client):
        first = await _submit(client, "k1")
        second = await _submit(client, "k2")
        admin_list = (await client.get("/jobs", headers=_as("root"))).json()
        own_view = await client.get(f"/jobs/{first}", headers=_as("k1"))
        admin_view = await client.get(f"/jobs/{second}", headers=_as("root"))
        cancelled = await client.delete(f"/jobs/{second}", headers=_as("root"))
        engine.gate.set()
        stream = await client.get(f"/stream/{first}", headers=_as("k1"))
        results = await client.get(f"/jobs/{first}/results", headers=_as("k1"))
        admin_results = await client.get(f"/jobs/{first}/results", headers=_as("root"))
        retry = await client.post(f"/jobs/{first}/retry", headers=_as("k1"))
    assert [j["job_id"] for j in admin_list["jobs"]] == [second, first]
    assert own_view.json()["job_id"] == first
    assert admin_view.json()["job_id"] == second
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert parse_events(stream.text)[-1]["event"] == "complete"
    assert [r["id_alumno"] for r in results.json()["results"]] == ["A000", "A001"]
    assert admin_results.json() == results.json()
    assert retry.status_code == 409  # its own job: found, but nothing to retry
    assert retry.json()["error"]["message"] == f"job {first} has no error items to retry"


async def test_single_user_mode_shares_every_job(settings: Settings) -> None:
    """Without any token configured everything stays shared, as before."""
    async with running_app(settings, ScriptedEngine(lambda r: answer())) as (app, client):
        job_id = (await client.post("/evaluate", json={"items": items(1)})).json()["job_id"]
        await client.get(f"/stream/{job_id}")
        listed = (await client.get("/jobs")).json()
        owner = (await app.state.evalserve.components.jobs.get(job_id)).owner
    assert [j["job_id"] for j in listed["jobs"]] == [job_id]
    assert owner is None
