"""`GET /v1/models` and `GET /v1/models/{id}` on a scripted engine serving several models."""

from __future__ import annotations

import asyncio

import httpx

from evalserve.engines.base import ModelInfo
from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import FailingEngine, ScriptedEngine
from tests.server.openai_app import make_settings, running_app

INFOS = [ModelInfo(id="scripted", owned_by="evalserve", created=100, loaded_at=1234.5,
                   gpu_memory_gb=1.75, max_model_len=2048),
         ModelInfo(id="org/adapter-v2", owned_by="someone", created=200)]


class TwoModels(ScriptedEngine):
    async def models(self) -> list[ModelInfo]:
        return INFOS


async def test_list_has_every_served_model_in_order_with_its_card(settings: Settings) -> None:
    async with running_app(make_settings(settings), TwoModels(lambda r: "x")) as (_, client):
        body = (await client.get("/v1/models")).json()
    assert body == {"object": "list", "data": [
        {"id": "scripted", "object": "model", "created": 100, "owned_by": "evalserve",
         "max_model_len": 2048},
        {"id": "org/adapter-v2", "object": "model", "created": 200, "owned_by": "someone",
         "max_model_len": None}]}


async def test_detail_adds_status_memory_and_load_time(settings: Settings) -> None:
    async with running_app(make_settings(settings), TwoModels(lambda r: "x")) as (_, client):
        first = (await client.get("/v1/models/scripted")).json()
        slashed = await client.get("/v1/models/org/adapter-v2")
    assert first == {"id": "scripted", "object": "model", "created": 100,
                     "owned_by": "evalserve", "max_model_len": 2048, "model": "scripted",
                     "status": "loaded", "gpu_memory_usage": 1.75, "loaded_at": 1234.5}
    assert slashed.status_code == 200
    assert slashed.json()["model"] == "org/adapter-v2"
    assert slashed.json()["gpu_memory_usage"] is None and slashed.json()["loaded_at"] is None


async def test_unknown_model_is_a_404_envelope_pointing_at_the_list(settings: Settings) -> None:
    async with running_app(make_settings(settings)) as (_, client):
        r = await client.get("/v1/models/gpt-4")
    assert r.status_code == 404
    assert r.json() == {"error": {
        "message": "model 'gpt-4' is not served here; GET /v1/models lists the served models",
        "type": "invalid_request_error", "code": "model_not_found"}}


class SlowStart(ScriptedEngine):
    def __init__(self) -> None:
        super().__init__(lambda r: "x")
        self.release = asyncio.Event()

    async def start(self) -> None:
        await self.release.wait()
        await super().start()


async def test_models_are_503_while_the_engine_loads_then_listed(settings: Settings) -> None:
    engine = SlowStart()
    app = build_app(make_settings(settings), engine=engine)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        loading = [await client.get(path) for path in ("/v1/models", "/v1/models/scripted")]
        engine.release.set()
        await app.state.evalserve.wait_engine()
        ready = await client.get("/v1/models")
    for r in loading:
        assert r.status_code == 503
        assert r.json()["error"] == {
            "message": "the model is still loading; retry in a few seconds",
            "type": "server_error", "code": "engine_unavailable"}
    assert [m["id"] for m in ready.json()["data"]] == ["scripted"]


async def test_models_are_503_naming_the_cause_when_loading_failed(settings: Settings) -> None:
    app = build_app(make_settings(settings), engine=FailingEngine("weights missing"))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await app.state.evalserve.engine_ready.wait()
        r = await client.get("/v1/models")
    assert r.status_code == 503
    assert r.json()["error"]["message"] == "the model failed to load: weights missing"
