"""`GET /health` (seed 000's shape) and `GET /healthz` (seed 002's liveness): loading, healthy,
failed, the active jobs, and never behind auth."""

from __future__ import annotations

import asyncio
import time

import httpx

from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import FailingEngine, GatedEngine, ScriptedEngine
from tests.jobs.helpers import answer, items
from tests.server.openai_app import make_settings, running_app
from tests.waiting import wait_until

HEALTH_KEYS = {"status", "model_loaded", "gpu_available", "active_jobs", "model", "timestamp"}


class SlowStartEngine(ScriptedEngine):
    def __init__(self) -> None:
        super().__init__(lambda r: "ok")
        self.release = asyncio.Event()

    async def start(self) -> None:
        await self.release.wait()
        await super().start()


async def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_health_reports_loading_then_healthy(settings: Settings) -> None:
    engine = SlowStartEngine()
    app = build_app(settings, engine=engine)
    async with app.router.lifespan_context(app), await _client(app) as client:
        body = (await client.get("/health")).json()
        assert body["status"] == "loading"
        assert body["model_loaded"] is False
        engine.release.set()
        await app.state.evalserve.engine_ready.wait()
        body = (await client.get("/health")).json()
        assert body == {**body, "status": "healthy", "model_loaded": True,
                        "gpu_available": False, "active_jobs": 0}
        assert (await client.get("/healthz")).json()["status"] == "ok"
    assert engine.closed


async def test_engine_failure_is_reported_not_raised(settings: Settings) -> None:
    app = build_app(settings, engine=FailingEngine())
    async with app.router.lifespan_context(app), await _client(app) as client:
        await app.state.evalserve.engine_ready.wait()
        body = (await client.get("/health")).json()
        assert body["status"] == "error"
        assert body["model_loaded"] is False


async def test_health_has_the_seed_shape_with_model_and_a_current_timestamp(
        settings: Settings) -> None:
    before = time.time()
    async with running_app(settings) as (_, client):
        resp = await client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == HEALTH_KEYS
    assert (body["status"], body["model_loaded"], body["model"]) == ("healthy", True, "scripted")
    assert before <= body["timestamp"] <= time.time()


async def test_health_answers_while_loading_without_asking_the_engine(
        settings: Settings) -> None:
    class NoHealthYet(SlowStartEngine):
        async def health(self):  # noqa: ANN202
            raise AssertionError("health() asked before the engine loaded")

    engine = NoHealthYet()
    app = build_app(settings, engine=engine)
    async with app.router.lifespan_context(app), await _client(app) as client:
        body = (await client.get("/health")).json()
        assert (body["status"], body["model_loaded"], body["gpu_available"]) == (
            "loading", False, False)
        assert (await client.get("/healthz")).json() == {"status": "ok", "model_loaded": False}
        engine.release.set()


async def test_healthz_says_ok_even_when_the_model_failed(settings: Settings) -> None:
    app = build_app(settings, engine=FailingEngine())
    async with app.router.lifespan_context(app), await _client(app) as client:
        await app.state.evalserve.engine_ready.wait()
        resp = await client.get("/healthz")
    assert (resp.status_code, resp.json()) == (200, {"status": "ok", "model_loaded": False})


async def test_health_counts_the_queued_and_running_jobs(settings: Settings) -> None:
    engine = GatedEngine(lambda r: answer())
    async with running_app(settings, engine) as (app, client):
        for _ in range(2):
            resp = await client.post("/evaluate", json={"items": items(2)})
            assert resp.status_code == 200, resp.text
        assert (await client.get("/health")).json()["active_jobs"] == 2
        engine.gate.set()
        jobs = app.state.evalserve.components.jobs
        await wait_until(lambda: jobs.active_jobs() == 0, what="both jobs finished")
        assert (await client.get("/health")).json()["active_jobs"] == 0


async def test_health_routes_need_no_token(settings: Settings) -> None:
    conf = make_settings(settings, api_token="s3cret")
    async with running_app(conf) as (_, client):
        health = await client.get("/health")
        healthz = await client.get("/healthz")
        assert (await client.get("/jobs")).status_code == 401  # the others do
    assert (health.status_code, health.json()["status"]) == (200, "healthy")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "ok", "model_loaded": True})


SECRET_ENDPOINT = "http://bob:hunter2@vllm.internal:8000/v1?api_key=k3y"


async def _failed_app_bodies(settings: Settings, paths: list[str]) -> dict[str, str]:
    app = build_app(settings, engine=FailingEngine(f"the upstream {SECRET_ENDPOINT} refused"))
    async with app.router.lifespan_context(app), await _client(app) as client:
        await wait_until(lambda: app.state.evalserve.engine_error is not None,
                         what="the engine to fail")
        return {path: (await client.get(path)).text for path in paths}


async def test_health_routes_never_show_endpoint_credentials(settings: Settings) -> None:
    """Issue 11, item 7: `VLLM_ENDPOINT` may hold `user:password@` or a key; the open health
    routes must not show it, even when the engine failed with an error naming it."""
    bodies = await _failed_app_bodies(settings, ["/health", "/healthz"])
    for path, text in bodies.items():
        assert "hunter2" not in text and "k3y" not in text, path


async def test_the_open_root_route_never_shows_endpoint_credentials(settings: Settings) -> None:
    """Defect (issue 11, item 7): the open `GET /` showed the load error verbatim, and with it
    `VLLM_ENDPOINT`'s `user:password@` and key."""
    text = (await _failed_app_bodies(settings, ["/"]))["/"]
    assert "hunter2" not in text and "k3y" not in text
    assert "http://***@vllm.internal:8000/v1" in text
