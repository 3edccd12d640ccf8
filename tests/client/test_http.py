"""`evalserve.client.http`: the one error translation, the one bearer header, the defaults."""

from __future__ import annotations

import httpx
import pytest

from evalserve.client import EvalserveClient
from evalserve.client.http import (
    EvalserveHTTPError,
    async_client,
    auth_headers,
    default_token,
    default_url,
    error_from_response,
    first_token,
    send,
    send_async,
    sync_client,
)
from evalserve.errors import EvalserveError

ENVELOPE = {"error": {"message": "texts_original and texts_generated differ in length",
                      "type": "invalid_request_error", "code": "invalid_input"}}


def test_the_envelope_becomes_a_typed_error() -> None:
    err = error_from_response(httpx.Response(422, json=ENVELOPE))
    assert isinstance(err, EvalserveError)
    assert (err.status, err.type, err.code) == (422, "invalid_request_error", "invalid_input")
    assert err.message == ENVELOPE["error"]["message"]
    assert str(err) == f"422 invalid_input: {err.message}"


@pytest.mark.parametrize("response", [
    httpx.Response(502, text="bad gateway"),
    httpx.Response(502, json={"error": "a string, not the envelope"}),
    httpx.Response(502, json={"detail": "FastAPI's own shape"}),
])
def test_other_error_bodies_keep_their_status_and_text(response: httpx.Response) -> None:
    err = error_from_response(response)
    assert (err.status, err.type, err.code) == (502, "server_error", "http_error")
    assert err.message.startswith("HTTP 502: ")
    assert response.text.strip()[:20] in err.message


def test_an_empty_error_body_says_the_reason() -> None:
    assert error_from_response(httpx.Response(503)).message == "HTTP 503: Service Unavailable"


def _recording(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


async def test_the_bearer_header_is_sent_only_with_a_token() -> None:
    assert auth_headers(None) == auth_headers("") == {}
    assert auth_headers("t0k") == {"Authorization": "Bearer t0k"}
    seen: list[httpx.Request] = []
    with sync_client("http://x/", "t0k", timeout=5, transport=_recording(seen)) as http:
        send(http, "GET", "/a")
    with sync_client("http://x", None, timeout=5, transport=_recording(seen)) as http:
        send(http, "GET", "/b")
    async with async_client("http://x", "t1", timeout=5, transport=_recording(seen)) as ahttp:
        await send_async(ahttp, "GET", "/c")
    async with async_client("http://x", None, timeout=5, transport=_recording(seen)) as ahttp:
        await send_async(ahttp, "GET", "/d")
    assert [(str(r.url), r.headers.get("authorization")) for r in seen] == [
        ("http://x/a", "Bearer t0k"), ("http://x/b", None),
        ("http://x/c", "Bearer t1"), ("http://x/d", None)]


def test_a_client_without_a_token_sends_no_header() -> None:
    seen: list[httpx.Request] = []
    client = EvalserveClient("http://x", http=httpx.Client(base_url="http://x",
                                                           transport=_recording(seen)))
    assert client.token is None
    client.get_readability(["a"])
    assert "authorization" not in seen[0].headers


def _failing(exc: type[httpx.TransportError]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("exc", "code", "fragment"), [
    (httpx.ConnectError, "connection_error", "cannot reach evalserve at http://x:1"),
    (httpx.ReadTimeout, "timeout", "evalserve at http://x:1 did not answer /loss in time"),
])
async def test_transport_errors_have_status_0(exc: type[httpx.TransportError], code: str,
                                              fragment: str) -> None:
    with sync_client("http://x:1", None, timeout=5, transport=_failing(exc)) as http:
        with pytest.raises(EvalserveHTTPError) as info:
            send(http, "POST", "/loss", json={})
    assert (info.value.status, info.value.code) == (0, code)
    assert fragment in info.value.message and str(info.value) == info.value.message
    async with async_client("http://x:1", None, timeout=5, transport=_failing(exc)) as ahttp:
        with pytest.raises(EvalserveHTTPError) as info:
            await send_async(ahttp, "POST", "/loss", json={})
    assert (info.value.status, info.value.code) == (0, code)


async def test_error_answers_raise_from_send() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(404, json={
        "error": {"message": "job j1 not found", "type": "invalid_request_error",
                  "code": "not_found"}}))
    async with async_client("http://x", None, timeout=5, transport=transport) as ahttp:
        with pytest.raises(EvalserveHTTPError) as info:
            await send_async(ahttp, "GET", "/jobs/j1")
    assert (info.value.status, info.value.code, info.value.message) == (
        404, "not_found", "job j1 not found")


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EVALSERVE_URL", "METRICS_URL", "API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert default_url() == "http://localhost:8000" and default_token() is None
    monkeypatch.setenv("METRICS_URL", "http://metrics:8001")
    monkeypatch.setenv("API_TOKEN", " , first ,second")
    assert default_url() == "http://metrics:8001" and default_token() == "first"
    monkeypatch.setenv("EVALSERVE_URL", "http://main:8000")
    assert default_url() == "http://main:8000"
    assert first_token(None) is None and first_token("a,b") == "a" and first_token(" , ") is None
