"""The app skeleton: the lifespan loads and closes the engine, every router is mounted, one
error envelope. (The health routes: tests/server/routes/test_health.py.)"""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter

from evalserve.errors import InvalidInputError
from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine


async def test_the_lifespan_starts_the_engine_and_closes_it(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    app = build_app(settings, engine=engine)
    assert app.state.evalserve.engine is engine and not engine.started
    async with app.router.lifespan_context(app):
        assert await app.state.evalserve.wait_engine() is engine
        assert engine.started and not engine.closed
    assert engine.closed


def test_every_router_is_mounted(settings: Settings) -> None:
    app = build_app(settings, engine=ScriptedEngine(lambda r: "ok"))
    paths = set(app.openapi()["paths"])  # GET /metrics is left out of the schema on purpose
    assert paths >= {"/health", "/healthz", "/", "/predict", "/evaluate",
                     "/stream/{job_id}", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/results",
                     "/v1/chat/completions", "/v1/completions", "/v1/models", "/rubrics"}


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
