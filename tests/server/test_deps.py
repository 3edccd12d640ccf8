"""The typed dependencies on a bare FastAPI app: each hands the route what `AppState` holds,
or the 503 envelope while that is not running."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from evalserve.server import deps
from evalserve.server.deps import EngineDep, JobsDep, SettingsDep, StateDep
from evalserve.server.errors import install_error_handlers
from evalserve.server.state import AppState
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine


@pytest.fixture
def state(settings: Settings) -> AppState:
    return AppState(settings=settings, engine=ScriptedEngine(lambda r: "ok"))


@pytest.fixture
async def client(state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.evalserve = state
    install_error_handlers(app)

    @app.get("/state")
    async def get_state(s: StateDep) -> dict:
        return {"same": s is state}

    @app.get("/settings")
    async def get_settings(s: SettingsDep) -> dict:
        return {"same": s is state.settings, "data_dir": str(s.data_dir)}

    @app.get("/engine")
    async def get_engine(engine: EngineDep) -> dict:
        return {"same": engine is state.engine, "model": engine.model_id}

    @app.get("/jobs")
    async def get_jobs(jobs: JobsDep) -> dict:
        return {"same": jobs is state.components.jobs}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as c:
        yield c


async def test_state_and_settings_are_the_app_s(client: httpx.AsyncClient,
                                                state: AppState) -> None:
    assert (await client.get("/state")).json() == {"same": True}
    assert (await client.get("/settings")).json() == {"same": True,
                                                       "data_dir": str(state.settings.data_dir)}


async def test_engine_is_a_503_until_loaded_then_the_engine(client: httpx.AsyncClient,
                                                            state: AppState) -> None:
    loading = await client.get("/engine")
    assert loading.status_code == 503
    assert loading.json()["error"] == {
        "message": "the model is still loading; retry in a few seconds",
        "type": "server_error", "code": "engine_unavailable"}
    state.engine_ready.set()
    assert (await client.get("/engine")).json() == {"same": True, "model": "scripted"}


async def test_engine_is_a_503_naming_a_failed_load(client: httpx.AsyncClient,
                                                    state: AppState) -> None:
    state.engine_error = RuntimeError("weights corrupt")
    state.engine_ready.set()
    resp = await client.get("/engine")
    assert resp.status_code == 503
    assert resp.json()["error"]["message"] == "the model failed to load: weights corrupt"


async def test_jobs_is_a_503_until_the_service_is_set(client: httpx.AsyncClient,
                                                      state: AppState) -> None:
    resp = await client.get("/jobs")
    assert resp.status_code == 503
    assert resp.json()["error"]["message"] == ("the job service is not running; retry in a "
                                               "few seconds")
    state.components.jobs = object()  # type: ignore[assignment]
    assert (await client.get("/jobs")).json() == {"same": True}


def test_state_of_reads_the_app_state(state: AppState) -> None:
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(evalserve=state)))
    assert deps.state_of(request) is state  # type: ignore[arg-type]


def test_dependencies_are_coroutines_so_fastapi_runs_no_thread() -> None:
    for dep in (StateDep, SettingsDep, EngineDep, JobsDep):
        [marker] = dep.__metadata__
        assert inspect.iscoroutinefunction(marker.dependency), dep
