"""`evalserve.client.predict.PredictClient` against canned answers (the real server:
tests/e2e/test_predict.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from evalserve.client.predict import PredictClient
from evalserve.errors import UpstreamError


def _client(handler, token: str | None = None) -> PredictClient:  # noqa: ANN001
    return PredictClient("http://srv/", token, timeout=5,
                         transport=httpx.MockTransport(handler))


async def test_waits_for_get_root_then_predicts_one_and_a_batch() -> None:
    seen: list[httpx.Request] = []
    roots = iter([httpx.Response(503, text="loading"),
                  httpx.Response(200, json={"status": "batch"})])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/":
            return next(roots)
        prompt = json.loads(request.content)["prompt"]
        if isinstance(prompt, list):
            return httpx.Response(200, json={"response": [p.upper() for p in prompt]})
        return httpx.Response(200, json={"response": prompt.upper()})

    async with _client(handler, token="tk") as client:
        assert await client.wait_ready(10) == "batch"
        assert await client.predict("a") == "A"
        assert await client.predict_batch(["b", "c"]) == ["B", "C"]
    assert [r.url.path for r in seen] == ["/", "/", "/predict", "/predict"]
    assert {r.headers["authorization"] for r in seen} == {"Bearer tk"}


async def test_wait_ready_gives_up_naming_the_last_answer() -> None:
    async with _client(lambda r: httpx.Response(503, text="still loading")) as client:
        with pytest.raises(UpstreamError, match=r"http://srv/ was not ready within 0 s "
                                                r"\(last: 503 still loading\)"):
            await client.wait_ready(0.01)


async def test_error_answers_and_wrong_answer_counts() -> None:
    envelope = {"error": {"message": "prompt too long", "type": "invalid_request_error",
                          "code": "invalid_input"}}
    async with _client(lambda r: httpx.Response(422, json=envelope)) as client:
        with pytest.raises(UpstreamError, match="POST /predict answered 422: prompt too long"):
            await client.predict("a")
    async with _client(lambda r: httpx.Response(200, json={"response": ["one"]})) as client:
        with pytest.raises(UpstreamError, match="returned 1 answers for 2 prompts"):
            await client.predict_batch(["a", "b"])


async def test_an_unreachable_server_is_an_upstream_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with _client(handler) as client:
        with pytest.raises(UpstreamError, match="cannot reach evalserve at http://srv"):
            await client.predict("a")
