"""`evalserve.client.models.served_model_id` (what `evaluate --server --mlflow` logs)."""

from __future__ import annotations

import httpx
import pytest

from evalserve.client import models
from evalserve.client.models import served_model_id


def _serve(monkeypatch: pytest.MonkeyPatch, response: httpx.Response,
           seen: list[httpx.Request]) -> None:
    real = models.sync_client

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    monkeypatch.setattr(models, "sync_client", lambda *a, **kw: real(
        *a, **kw, transport=httpx.MockTransport(handler)))


def test_the_first_listed_model(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    _serve(monkeypatch, httpx.Response(200, json={"data": [{"id": "m1"}, {"id": "m2"}]}), seen)
    assert served_model_id("http://srv/", "tk") == "m1"
    assert str(seen[0].url) == "http://srv/v1/models"
    assert seen[0].headers["authorization"] == "Bearer tk"


@pytest.mark.parametrize("response", [
    httpx.Response(401, json={"error": {"message": "bad key", "type": "authentication_error",
                                        "code": "invalid_api_key"}}),
    httpx.Response(200, json={"data": []}),
    httpx.Response(200, text="not json"),
])
def test_unknown_when_the_server_does_not_say(monkeypatch: pytest.MonkeyPatch,
                                              response: httpx.Response) -> None:
    _serve(monkeypatch, response, [])
    assert served_model_id("http://srv", None) == "unknown"


def test_unknown_when_unreachable() -> None:
    assert served_model_id("http://127.0.0.1:9", None, timeout=2) == "unknown"
