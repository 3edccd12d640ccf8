"""The app skeleton: lifespan loads and closes the engine, /health shapes, one error envelope."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter

from evalserve.errors import InvalidInputError
from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine


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
    class Broken(ScriptedEngine):
        async def start(self) -> None:
            raise RuntimeError("weights corrupt")

    app = build_app(settings, engine=Broken(lambda r: ""))
    async with app.router.lifespan_context(app), await _client(app) as client:
        await app.state.evalserve.engine_ready.wait()
        body = (await client.get("/health")).json()
        assert body["status"] == "error"
        assert body["model_loaded"] is False


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [("/boom-invalid", 422, "invalid_input"), ("/boom-unexpected", 500, "internal_error"),
     ("/no-such-route", 404, "not_found")],
)
async def test_every_error_uses_the_envelope(
    settings: Settings, path: str, status: int, code: str
) -> None:
    app = build_app(settings, engine=ScriptedEngine(lambda r: ""))
    router = APIRouter()

    @router.get("/boom-invalid")
    async def invalid() -> None:
        raise InvalidInputError("field x must be a string")

    @router.get("/boom-unexpected")
    async def unexpected() -> None:
        raise RuntimeError("secret internals")

    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(path)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["code"] == code
    assert "secret internals" not in error["message"]
    if status == 422:
        assert error["message"] == "field x must be a string"
