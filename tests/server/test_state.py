"""`AppState` and `Services`: the engine's loading states, `require`'s 503 and the active-job
count before and after the job service runs."""

from __future__ import annotations

import asyncio

import pytest

from evalserve.errors import EngineUnavailableError
from evalserve.server.state import AppState, Services, require
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine


@pytest.fixture
def state(settings: Settings) -> AppState:
    return AppState(settings=settings, engine=ScriptedEngine(lambda r: "ok"))


def test_require_returns_the_service_or_a_503_naming_it() -> None:
    service = object()
    assert require(service, "job service") is service
    with pytest.raises(EngineUnavailableError) as info:
        require(None, "job service")
    assert info.value.message == "the job service is not running; retry in a few seconds"
    assert (info.value.status, info.value.code) == (503, "engine_unavailable")


def test_a_new_state_is_loading(state: AppState) -> None:
    assert not state.loaded
    assert state.engine_error is None
    with pytest.raises(EngineUnavailableError,
                       match="the model is still loading; retry in a few seconds"):
        state.ready_engine()


def test_once_ready_the_engine_is_served(state: AppState) -> None:
    state.engine_ready.set()
    assert state.loaded
    assert state.ready_engine() is state.engine


def test_a_failed_load_is_a_503_naming_the_cause(state: AppState) -> None:
    state.engine_error = RuntimeError("weights corrupt")
    state.engine_ready.set()
    assert not state.loaded
    with pytest.raises(EngineUnavailableError,
                       match="the model failed to load: weights corrupt"):
        state.ready_engine()


async def test_wait_engine_waits_for_the_load(state: AppState) -> None:
    waiter = asyncio.create_task(state.wait_engine())
    await asyncio.sleep(0)
    assert not waiter.done()
    state.engine_ready.set()
    assert await asyncio.wait_for(waiter, 5) is state.engine


async def test_wait_engine_raises_when_the_load_failed(state: AppState) -> None:
    state.engine_error = RuntimeError("no GPU")
    state.engine_ready.set()
    with pytest.raises(EngineUnavailableError, match="no GPU"):
        await state.wait_engine()


def test_services_start_empty_and_count_no_jobs(state: AppState) -> None:
    assert state.components == Services()
    assert state.components.active_jobs == 0


def test_active_jobs_come_from_the_job_service() -> None:
    class Jobs:
        def active_jobs(self) -> int:
            return 3

    assert Services(jobs=Jobs()).active_jobs == 3  # type: ignore[arg-type]


def test_each_state_has_its_own_event_and_services(settings: Settings) -> None:
    a = AppState(settings=settings, engine=ScriptedEngine(lambda r: "ok"))
    b = AppState(settings=settings, engine=ScriptedEngine(lambda r: "ok"))
    a.engine_ready.set()
    a.components.metrics_port = 9000
    assert not b.engine_ready.is_set() and b.components.metrics_port is None


def test_a_load_error_is_shown_without_endpoint_credentials(state: AppState) -> None:
    """Defect (issue 11, item 7): every route needing the engine repeated the load error
    verbatim, `VLLM_ENDPOINT`'s `user:password@` included."""
    state.engine_error = ConnectionError("cannot reach http://bob:hunter2@vllm:8000/v1")
    state.engine_ready.set()
    with pytest.raises(EngineUnavailableError) as info:
        state.ready_engine()
    assert "hunter2" not in info.value.message
    assert "http://***@vllm:8000/v1" in info.value.message
