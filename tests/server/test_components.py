"""server/components.py: every lifespan component built in order, closed in reverse, published
in the typed `Services`, and the job runner given its hooks explicitly."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from evalserve.jobs.hooks import MetricsHook
from evalserve.jobs.service import JobService
from evalserve.metrics.service import MetricsService
from evalserve.server import components
from evalserve.server.app import build_app
from evalserve.server.cache import MemoryCache
from evalserve.server.ratelimit import RateLimiter
from evalserve.server.state import AppState, Services
from evalserve.server.telemetry import Telemetry
from evalserve.settings import Settings
from evalserve.tracking.jobs import TrackedJobLogger, remember_inputs
from tests.fakes import ScriptedEngine


class RecordingEngine(ScriptedEngine):
    def __init__(self, events: list[str]) -> None:
        super().__init__(lambda r: "ok")
        self.events = events

    async def close(self) -> None:
        self.events.append("close engine")
        await super().close()


def _recorded(events: list[str], name: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    def build(*args: Any, **kwargs: Any) -> Any:
        events.append(f"start {name}")
        return factory(*args, **kwargs)

    return build


def _recorded_context(events: list[str], name: str,
                      factory: Callable[..., Any]) -> Callable[..., Any]:
    @contextlib.asynccontextmanager
    async def run(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        events.append(f"start {name}")
        async with factory(*args, **kwargs) as value:
            try:
                yield value
            finally:
                events.append(f"close {name}")

    return run


def _record_closes(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
    """Record the start of each component (in `server.components`) and its close."""
    for name, cls in (("cache", MemoryCache), ("limiter", RateLimiter), ("jobs", JobService)):
        monkeypatch.setattr(cls, "close", _closing(events, name, cls.close))
    monkeypatch.setattr(components, "create_cache",
                        _recorded(events, "cache", components.create_cache))
    monkeypatch.setattr(RateLimiter, "from_settings", classmethod(
        _recorded(events, "limiter", RateLimiter.from_settings.__func__)))
    monkeypatch.setattr(components, "metrics_server",
                        _recorded_context(events, "metrics_port", components.metrics_server))
    monkeypatch.setattr(components, "warmup",
                        _recorded_context(events, "warmup", components.warmup))
    monkeypatch.setattr(components, "build_metrics_service",
                        _recorded(events, "metrics", components.build_metrics_service))
    monkeypatch.setattr(JobService, "start", _starting(events, "jobs", JobService.start))


def _closing(events: list[str], name: str, close: Callable[..., Any]) -> Callable[..., Any]:
    async def recorded(self: Any) -> None:
        events.append(f"close {name}")
        await close(self)

    return recorded


def _starting(events: list[str], name: str, start: Callable[..., Any]) -> Callable[..., Any]:
    async def recorded(self: Any) -> None:
        await start(self)
        events.append(f"started {name}")

    return recorded


ORDER = ["cache", "limiter", "metrics_port", "warmup", "metrics"]


async def test_components_start_in_order_and_close_in_reverse(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    _record_closes(monkeypatch, events)
    state = build_app(settings, engine=RecordingEngine(events)).state.evalserve
    async with components.run_components(state) as services:
        await state.wait_engine()
        assert services is state.components
        assert events == [*(f"start {name}" for name in ORDER), "started jobs"]
        events.clear()
    assert events == ["close jobs", "close warmup", "close metrics_port", "close limiter",
                      "close cache", "close engine"]


async def test_a_component_that_fails_to_start_closes_the_ones_before(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    _record_closes(monkeypatch, events)

    async def broken(self: JobService) -> None:
        raise RuntimeError("database locked")

    monkeypatch.setattr(JobService, "start", broken)
    state = build_app(settings, engine=RecordingEngine(events)).state.evalserve
    with pytest.raises(RuntimeError, match="database locked"):
        async with components.run_components(state):
            pass
    assert events == [*(f"start {name}" for name in ORDER), "close warmup",
                      "close metrics_port", "close limiter", "close cache", "close engine"]
    assert state.components.jobs is None


async def test_services_are_typed_and_cleared_at_exit(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    app = build_app(settings, engine=engine)
    state: AppState = app.state.evalserve
    assert isinstance(state.components.telemetry, Telemetry)  # built with the app
    assert state.components.jobs is None and state.components.active_jobs == 0
    async with app.router.lifespan_context(app):
        services = state.components
        assert isinstance(services.response_cache, MemoryCache)
        assert isinstance(services.rate_limiter, RateLimiter)
        assert isinstance(services.metrics, MetricsService)
        assert isinstance(services.jobs, JobService)
        assert services.metrics_port is None and services.warmup_done is None  # both off
        assert services.active_jobs == 0
    assert state.components == Services(telemetry=state.components.telemetry)
    assert engine.closed


async def test_the_runner_gets_its_hooks_as_arguments(settings: Settings) -> None:
    app = build_app(settings.model_copy(update={"max_new_tokens": 77}),
                    engine=ScriptedEngine(lambda r: "ok"))
    state: AppState = app.state.evalserve
    async with app.router.lifespan_context(app):
        jobs, metrics = state.components.jobs, state.components.metrics
        assert jobs is not None and metrics is not None
        metrics_hook, inputs_hook, counter_hook = jobs.runner.item_hooks
        assert isinstance(metrics_hook, MetricsHook) and metrics_hook.service is metrics
        assert inputs_hook is remember_inputs
        assert counter_hook == state.components.telemetry.count_graded
        [tracking] = jobs.runner.finish_hooks
        assert isinstance(tracking, TrackedJobLogger)
        assert tracking.engine is state.engine and tracking.settings is state.settings
        assert (tracking.temperature, tracking.max_tokens) == (jobs.kit.temperature, 77)


async def test_routes_needing_a_service_answer_503_before_the_lifespan(
        settings: Settings) -> None:
    app = build_app(settings, engine=ScriptedEngine(lambda r: "ok"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.get("/jobs")
    assert resp.status_code == 503
    assert resp.json()["error"]["message"] == ("the job service is not running; retry in a "
                                               "few seconds")
