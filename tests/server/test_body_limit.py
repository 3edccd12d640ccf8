"""`MAX_REQUEST_BYTES` (`server/body_limit.py`): bodies over the limit answer the 413
envelope, by `Content-Length` before reading and by counting when the body is streamed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from evalserve.settings import Settings
from tests.fakes import ScriptedEngine
from tests.server.openai_app import make_settings, running_app

LIMIT = 2048


def assert_413(resp, size_in_message: bool) -> None:  # noqa: ANN001
    assert resp.status_code == 413, resp.text
    error = resp.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "payload_too_large")
    assert f"limit of {LIMIT} bytes" in error["message"]
    assert "MAX_REQUEST_BYTES" in error["message"]
    assert ("bytes" in error["message"].split("is larger")[0]) is size_in_message


async def test_a_body_over_the_content_length_limit_is_413(settings: Settings) -> None:
    """Regression: there was no request-body limit; any size was read and parsed."""
    engine = ScriptedEngine(lambda r: "x")
    async with running_app(make_settings(settings, max_request_bytes=LIMIT), engine) as (
            _, client):
        body = json.dumps({"model": "scripted", "prompt": "p" * LIMIT}).encode()
        r = await client.post("/v1/completions", content=body,
                              headers={"content-type": "application/json"})
        assert_413(r, size_in_message=True)
        assert f"of {len(body)} bytes" in r.json()["error"]["message"]
        assert "(2 KiB, MAX_REQUEST_BYTES)" in r.json()["error"]["message"]
        ok = await client.post("/v1/completions", json={"model": "scripted", "prompt": "p"})
        assert ok.status_code == 200
    assert len(engine.requests) == 1


async def test_a_streamed_body_without_content_length_is_counted(settings: Settings) -> None:
    """Regression: a chunked body (no `Content-Length`) must be bounded as it arrives."""
    engine = ScriptedEngine(lambda r: "x")
    sent = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "scripted", "prompt": "'
        for _ in range(10):
            sent.append(512)
            yield b"p" * 512
        yield b'"}'

    async with running_app(make_settings(settings, max_request_bytes=LIMIT), engine) as (
            _, client):
        r = await client.post("/v1/completions", content=chunks(),
                              headers={"content-type": "application/json"})
        assert_413(r, size_in_message=False)
        assert len(sent) < 10  # refused as it arrived: the rest was never read

        async def small() -> AsyncIterator[bytes]:
            yield b'{"model": "scripted", '
            yield b'"prompt": "p"}'

        ok = await client.post("/v1/completions", content=small(),
                               headers={"content-type": "application/json"})
        assert ok.status_code == 200, ok.text
    assert len(engine.requests) == 1


async def test_the_default_limit_is_32_mib_and_installed(settings: Settings) -> None:
    assert settings.max_request_bytes == 32 * 2**20
    async with running_app(make_settings(settings)) as (app, client):
        r = await client.post("/predict", content=b"x", headers={
            "content-type": "application/json", "content-length": str(32 * 2**20 + 1)})
        assert r.status_code == 413 and "32 MiB" in r.json()["error"]["message"]
        assert (await client.get("/health")).status_code == 200  # bodiless requests pass
