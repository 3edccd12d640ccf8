"""The `WARMUP_FILE` warm-up: reading its prompts, running them as one `/predict` batch in
the background, `GET /` saying `loading` until it is over, and failures that never stop the
server."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.server.app import build_app
from evalserve.server.state import AppState
from evalserve.server.warmup import is_warm, read_warmup_prompts, warmup
from evalserve.settings import Settings
from tests.fakes import GatedEngine, ScriptedEngine, request_text
from tests.waiting import wait_until


def _echo(request: GenerationRequest) -> str:
    return f"answer to {request_text(request)}"


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")



def _status_ok(client: httpx.AsyncClient):  # noqa: ANN202
    """A predicate for `wait_until`: `GET /`'s response once it is 200, else None."""

    async def check() -> httpx.Response | None:
        resp = await client.get("/")
        return resp if resp.status_code == 200 else None

    return check



def test_read_warmup_prompts_takes_the_first_valid_lines(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    lines = ['{"prompt": "a"}', "", "not json", '{"question": "x"}', '"b"',
             '{"prompt": "c", "answer": "z"}', '{"prompt": "d"}']
    path.write_text("\n".join(lines), encoding="utf-8")
    assert read_warmup_prompts(path, 3) == ["a", "b", "c"]
    assert read_warmup_prompts(path, 100) == ["a", "b", "c", "d"]


async def test_root_says_loading_until_warmup_is_done(settings: Settings, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"w{i}"}) for i in range(10)),
                    encoding="utf-8")
    conf = settings.model_copy(update={"warmup_file": path, "warmup_max_prompts": 4,
                                       "warmup_max_tokens": 5})
    engine = GatedEngine(_echo)
    app = build_app(conf, engine=engine)
    caplog.set_level("INFO", logger="evalserve.server.warmup")
    async with app.router.lifespan_context(app), _client(app) as client:
        await app.state.evalserve.engine_ready.wait()
        resp = await client.get("/")
        assert (resp.status_code, resp.json()) == (503, {"status": "loading"})
        health = (await client.get("/health")).json()
        assert health["model_loaded"] is True  # only GET / waits for the warm-up
        engine.gate.set()
        await wait_until(_status_ok(client), timeout=5, what="the warm-up to finish")
    assert [request_text(r) for r in engine.requests] == ["w0", "w1", "w2", "w3"]
    assert {r.max_tokens for r in engine.requests} == {5}
    assert "warm-up: 4 prompts answered" in caplog.text


@pytest.mark.parametrize("content", [None, "not json\n", ""])
async def test_a_broken_warmup_never_blocks_the_service(settings: Settings, tmp_path: Path,
                                                        content: str | None) -> None:
    path = tmp_path / "w.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    conf = settings.model_copy(update={"warmup_file": path})
    app = build_app(conf, engine=ScriptedEngine(_echo))
    async with app.router.lifespan_context(app), _client(app) as client:
        resp = await wait_until(_status_ok(client), timeout=5, what="GET / to answer 200")
        assert resp.json() == {"status": "ok"}


async def test_a_failing_warmup_generation_is_logged_not_fatal(
        settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"prompt": "boom"}\n', encoding="utf-8")

    def script(request: GenerationRequest) -> str:
        raise RuntimeError("decode thread died")

    app = build_app(settings.model_copy(update={"warmup_file": path}),
                    engine=ScriptedEngine(script))
    async with app.router.lifespan_context(app), _client(app) as client:
        await wait_until(_status_ok(client), timeout=5, what="GET / to answer 200")
    assert "warm-up failed" in caplog.text and "decode thread died" in caplog.text


def test_read_warmup_prompts_logs_each_skipped_line(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"prompt": "a"}\nnot json\n{"prompt": "  "}\n7\n', encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="evalserve.server.warmup")
    assert read_warmup_prompts(path, 10) == ["a"]
    assert "line 2 is not JSON" in caplog.text
    assert 'line 3 has no "prompt" string' in caplog.text
    assert 'line 4 has no "prompt" string' in caplog.text


def test_read_warmup_prompts_stops_reading_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('"a"\n"b"\nnot json\n', encoding="utf-8")
    assert read_warmup_prompts(path, 2) == ["a", "b"]
    assert read_warmup_prompts(path, 0) == []


def test_is_warm_without_a_warmup_and_before_and_after_one(settings: Settings) -> None:
    state = AppState(settings=settings, engine=ScriptedEngine(_echo))
    assert is_warm(state)  # none configured
    state.components.warmup_done = asyncio.Event()
    assert not is_warm(state)
    state.components.warmup_done.set()
    assert is_warm(state)


async def test_without_warmup_file_nothing_runs(settings: Settings) -> None:
    async def provider() -> ScriptedEngine:
        raise AssertionError("the engine is not needed without WARMUP_FILE")

    async with warmup(settings, provider) as done:
        assert done is None


async def test_warmup_waits_for_the_engine_then_sets_done(settings: Settings,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"prompt": "w0"}\n', encoding="utf-8")
    conf = settings.model_copy(update={"warmup_file": path, "warmup_max_tokens": 10_000})
    engine = ScriptedEngine(_echo)
    ready = asyncio.Event()

    async def provider() -> ScriptedEngine:
        await ready.wait()
        return engine

    async with warmup(conf, provider) as done:
        assert done is not None and not done.is_set()
        ready.set()
        await asyncio.wait_for(done.wait(), 5)
    [request] = engine.requests
    assert request_text(request) == "w0"
    assert request.max_tokens == conf.max_new_tokens  # capped by MAX_NEW_TOKENS


async def test_leaving_cancels_an_unfinished_warmup(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"prompt": "w0"}\n', encoding="utf-8")
    conf = settings.model_copy(update={"warmup_file": path})
    started = asyncio.Event()
    cancelled = []

    async def provider() -> ScriptedEngine:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        raise AssertionError("unreachable")

    async with warmup(conf, provider) as done:
        await asyncio.wait_for(started.wait(), 5)
    assert cancelled == [True]
    assert done is not None and done.is_set()
