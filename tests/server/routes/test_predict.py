"""`GET /` (seed 003's readiness) and `POST /predict` on a scripted engine: ok/batch/loading/
error, single and batch answers, and the 422 envelopes of bad bodies.

The library behind them: tests/generation/test_predict.py; the real model:
tests/e2e/test_predict.py; `GET /` during a warm-up: tests/server/test_warmup.py.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import FailingEngine, ScriptedEngine, request_text
from tests.server.openai_app import make_settings, running_app


def _echo(request: GenerationRequest) -> str:
    return f"answer to {request_text(request)}"


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
def batch_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"batch_mode": True, "max_field_chars": 100})


async def test_root_says_ok_or_batch_when_ready(settings: Settings,
                                                batch_settings: Settings) -> None:
    for conf, status in ((settings, "ok"), (batch_settings, "batch")):
        app = build_app(conf, engine=ScriptedEngine(_echo))
        async with app.router.lifespan_context(app), _client(app) as client:
            await app.state.evalserve.engine_ready.wait()
            resp = await client.get("/")
            assert (resp.status_code, resp.json()) == (200, {"status": status})


async def test_root_is_503_loading_until_the_engine_is_loaded(settings: Settings) -> None:
    class SlowStart(ScriptedEngine):
        release = asyncio.Event()

        async def start(self) -> None:
            await self.release.wait()

    engine = SlowStart(_echo)
    app = build_app(settings, engine=engine)
    async with app.router.lifespan_context(app), _client(app) as client:
        resp = await client.get("/")
        assert (resp.status_code, resp.json()) == (503, {"status": "loading"})
        predict_resp = await client.post("/predict", json={"prompt": "q"})
        assert predict_resp.status_code == 503
        assert "loading" in predict_resp.json()["error"]["message"]
        engine.release.set()
        await app.state.evalserve.engine_ready.wait()
        assert (await client.get("/")).json() == {"status": "ok"}


async def test_root_reports_a_failed_load(settings: Settings) -> None:
    app = build_app(settings, engine=FailingEngine(script=_echo))
    async with app.router.lifespan_context(app), _client(app) as client:
        await app.state.evalserve.engine_ready.wait()
        resp = await client.get("/")
        assert resp.status_code == 503
        assert resp.json()["status"] == "error"
        assert "weights corrupt" in resp.json()["message"]


async def test_predict_single_and_batch(batch_settings: Settings) -> None:
    engine = ScriptedEngine(_echo)
    app = build_app(batch_settings, engine=engine)
    async with app.router.lifespan_context(app), _client(app) as client:
        await app.state.evalserve.engine_ready.wait()
        single = await client.post("/predict", json={"prompt": "中国的首都？"})
        assert single.json() == {"response": "answer to 中国的首都？"}
        prompts = [f"p{i}" for i in range(50)]
        batch = await client.post("/predict", json={"prompt": prompts})
        assert batch.json() == {"response": [f"answer to p{i}" for i in range(50)]}
        empty = await client.post("/predict", json={"prompt": []})
        assert (empty.status_code, empty.json()) == (200, {"response": []})


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "prompt: Field required"),
        ({"question": "q"}, "prompt: Field required"),
        ({"prompt": 3}, "must be a string (or, with BATCH_MODE=1, a list of strings), got int"),
        ({"prompt": None}, "got null"),
        ({"prompt": ["a", ["b"]]}, "item 1 must be a string, got a list"),
        ({"prompt": ["a", 2]}, "item 1 must be a string, got int"),
        ({"prompt": "x" * 101}, "101 characters; the limit is 100 (MAX_FIELD_CHARS)"),
        (["not", "an", "object"], "valid dictionary"),
    ],
)
async def test_malformed_bodies_get_a_422_envelope(batch_settings: Settings, body: object,
                                                   fragment: str) -> None:
    app = build_app(batch_settings, engine=ScriptedEngine(_echo))
    async with app.router.lifespan_context(app), _client(app) as client:
        await app.state.evalserve.engine_ready.wait()
        resp = await client.post("/predict", json=body)
        assert resp.status_code == 422
        error = resp.json()["error"]
        assert fragment in error["message"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_input")


async def test_a_list_without_batch_mode_is_refused(settings: Settings) -> None:
    app = build_app(settings, engine=ScriptedEngine(_echo))
    async with app.router.lifespan_context(app), _client(app) as client:
        await app.state.evalserve.engine_ready.wait()
        resp = await client.post("/predict", json={"prompt": ["a", "b"]})
        assert resp.status_code == 422
        assert "BATCH_MODE=1" in resp.json()["error"]["message"]


async def test_invalid_json_gets_a_422_envelope(settings: Settings) -> None:
    app = build_app(settings, engine=ScriptedEngine(_echo))
    async with app.router.lifespan_context(app), _client(app) as client:
        await app.state.evalserve.engine_ready.wait()
        resp = await client.post("/predict", content=b'{"prompt": "a"',
                                 headers={"content-type": "application/json"})
        assert resp.status_code == 422
        assert resp.json()["error"]["code"] == "invalid_input"


async def test_predict_sends_the_prompt_as_a_chat_turn_with_the_settings_sampling(
        settings: Settings) -> None:
    engine = ScriptedEngine(_echo)
    conf = make_settings(settings, max_new_tokens=11, temperature=0.0, top_p=0.5)
    async with running_app(conf, engine) as (_, client):
        resp = await client.post("/predict", json={"prompt": "What is 2+2?"})
    assert resp.json() == {"response": "answer to What is 2+2?"}
    [request] = engine.requests
    assert request.messages == [{"role": "user", "content": "What is 2+2?"}]
    assert (request.max_tokens, request.temperature, request.top_p) == (11, 0.0, 0.5)


async def test_predict_answers_are_post_processed(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "  Paris. Paris. Paris. Paris.<|im_end|>junk")
    async with running_app(settings, engine) as (_, client):
        resp = await client.post("/predict", json={"prompt": "Capital of France?"})
    assert (resp.status_code, resp.json()) == (200, {"response": "Paris."})


async def test_root_and_predict_need_a_token_only_for_predict(settings: Settings) -> None:
    async with running_app(make_settings(settings, api_token="s3cret")) as (_, client):
        root = await client.get("/")
        refused = await client.post("/predict", json={"prompt": "q"})
        allowed = await client.post("/predict", json={"prompt": "q"},
                                    headers={"Authorization": "Bearer s3cret"})
    assert (root.status_code, root.json()) == (200, {"status": "ok"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert (allowed.status_code, allowed.json()) == (200, {"response": "hello world"})


async def test_a_batch_over_max_predict_prompts_is_413(batch_settings: Settings) -> None:
    """Regression: batch `/predict` took any number of prompts in one request."""
    engine = ScriptedEngine(_echo)
    s = batch_settings.model_copy(update={"max_predict_prompts": 2})
    async with running_app(s, engine) as (_, client):
        r = await client.post("/predict", json={"prompt": ["a", "b", "c"]})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        assert "the limit is 2 (MAX_PREDICT_PROMPTS)" in r.json()["error"]["message"]
        ok = await client.post("/predict", json={"prompt": ["a", "b"]})
        assert ok.json() == {"response": ["answer to a", "answer to b"]}
    assert len(engine.requests) == 2
