"""The upstream HTTP client: retries with backoff, timeouts, and the mapping of upstream
failures to our error types (httpx.MockTransport upstreams)."""

from __future__ import annotations

import httpx
import pytest

from evalserve.engines.openai.client import UpstreamClient
from evalserve.errors import (
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from tests.engines.openai.upstream import Upstream, chat_reply

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def client_for(upstream: Upstream, **kw: object) -> UpstreamClient:
    options = {"retries": 2, "backoff": 0.001, **kw}
    return UpstreamClient("http://up/v1/", api_key="k", transport=httpx.MockTransport(upstream),
                          **options)  # type: ignore[arg-type]


async def post(client: UpstreamClient, *, stream: bool = False) -> httpx.Response:
    try:
        return await client.send("POST", "/chat/completions", BODY, stream=stream)
    finally:
        await client.close()


async def test_sends_json_to_the_base_url_with_the_bearer_key() -> None:
    upstream = Upstream(httpx.Response(200, json=chat_reply("ok")))
    client = client_for(upstream)
    assert client.base_url == "http://up/v1"
    resp = await post(client)
    assert resp.json()["choices"][0]["message"]["content"] == "ok"
    sent = upstream.seen[0]
    assert str(sent.url) == "http://up/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer k"
    assert upstream.bodies() == [BODY]


async def test_without_a_key_no_authorization_is_sent() -> None:
    upstream = Upstream(httpx.Response(200, json=chat_reply()))
    client = UpstreamClient("http://up/v1", transport=httpx.MockTransport(upstream))
    await post(client)
    assert "authorization" not in upstream.seen[0].headers


async def test_5xx_and_connection_errors_are_retried_then_succeed() -> None:
    upstream = Upstream(httpx.Response(503, json={"error": {"message": "busy"}}),
                        httpx.ConnectError("refused"),
                        httpx.Response(200, json=chat_reply("ok")))
    resp = await post(client_for(upstream))
    assert resp.json()["choices"][0]["message"]["content"] == "ok"
    assert len(upstream.seen) == 3


async def test_a_connect_timeout_is_retried() -> None:
    upstream = Upstream(httpx.ConnectTimeout("slow to connect"),
                        httpx.Response(200, json=chat_reply("ok")))
    assert (await post(client_for(upstream))).status_code == 200
    assert len(upstream.seen) == 2


async def test_exhausted_retries_become_502_with_upstream_message() -> None:
    upstream = Upstream(httpx.Response(500, json={"error": {"message": "CUDA out of memory"}}))
    with pytest.raises(UpstreamError) as info:
        await post(client_for(upstream, retries=1))
    assert info.value.status == 502 and "CUDA out of memory" in info.value.message
    assert len(upstream.seen) == 2


async def test_a_failed_stream_is_read_and_mapped_like_a_plain_answer() -> None:
    upstream = Upstream(httpx.Response(503, json={"error": {"message": "overloaded"}}))
    with pytest.raises(UpstreamError, match="overloaded"):
        await post(client_for(upstream, retries=0), stream=True)


async def test_unreachable_upstream_is_502_without_the_url() -> None:
    """Defect: 502 messages quoted the upstream URL, and VLLM_ENDPOINT may carry credentials
    (`https://user:token@host/v1`). They say "the upstream server" instead."""
    secret = "https://user:s3cret@vllm.internal:8000/v1?api_key=abc"
    client = UpstreamClient(secret, retries=1, backoff=0.001, transport=httpx.MockTransport(
        Upstream(httpx.ConnectError(f"connection refused to {secret}"))))
    with pytest.raises(UpstreamError) as info:
        await post(client)
    assert info.value.status == 502
    assert info.value.message == ("the upstream server cannot be reached (ConnectError), "
                                  "after 2 attempts (UPSTREAM_RETRIES=1); check VLLM_ENDPOINT")
    assert client.host == "vllm.internal:8000"


async def test_a_read_timeout_is_retried_then_504() -> None:
    """Defect: read timeouts were not retried (only connect timeouts were), so one slow
    upstream answer failed the item. They are retried with backoff, then a 504."""
    upstream = Upstream(httpx.ReadTimeout("slow"), httpx.Response(200, json=chat_reply("ok")))
    assert (await post(client_for(upstream, timeout=3))).status_code == 200
    assert len(upstream.seen) == 2
    always = Upstream(httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamTimeoutError) as info:
        await post(client_for(always, timeout=3, retries=2))
    assert info.value.status == 504 and info.value.type == "upstream_error"
    assert info.value.message == ("the upstream server did not answer within 3 s "
                                  "(UPSTREAM_TIMEOUT), after 3 attempts (UPSTREAM_RETRIES=2)")
    assert len(always.seen) == 3


async def test_client_errors_keep_status_and_message() -> None:
    too_long = {"object": "error", "message": "prompt is too long (5000 > 4096)", "code": 400}
    with pytest.raises(InvalidInputError) as info:
        await post(client_for(Upstream(httpx.Response(400, json=too_long))))
    assert info.value.status == 400 and "prompt is too long" in info.value.message
    with pytest.raises(InvalidInputError) as info:
        await post(client_for(Upstream(httpx.Response(422, text="unprocessable"))))
    assert info.value.status == 422 and info.value.message == "upstream: unprocessable"
    with pytest.raises(NotFoundError):
        await post(client_for(Upstream(httpx.Response(404, json={"detail": "no such model"}))))


async def test_429_honours_retry_after_then_maps_to_rate_limit() -> None:
    upstream = Upstream(httpx.Response(429, headers={"Retry-After": "0"},
                                       json={"error": {"message": "slow down"}}))
    with pytest.raises(RateLimitError) as info:
        await post(client_for(upstream, retries=1))
    assert info.value.status == 429 and len(upstream.seen) == 2


async def test_bad_credentials_name_the_setting() -> None:
    upstream = Upstream(httpx.Response(401, json={"error": {"message": "bad key"}}))
    with pytest.raises(UpstreamError) as info:
        await post(client_for(upstream))
    assert "OPENAI_API_KEY" in info.value.message and info.value.status == 502
    assert len(upstream.seen) == 1  # a refused key is not retried


async def test_an_upstream_504_is_a_timeout() -> None:
    upstream = Upstream(httpx.Response(504, text="gateway timeout"))
    with pytest.raises(UpstreamTimeoutError, match="upstream 504: gateway timeout"):
        await post(client_for(upstream, retries=0))


def test_broken_streams_map_to_our_errors() -> None:
    client = UpstreamClient("http://up/v1", timeout=7)
    with pytest.raises(UpstreamTimeoutError, match="stopped streaming for 7 s"):
        with client.reading_stream():
            raise httpx.ReadTimeout("idle")
    with pytest.raises(UpstreamError, match=r"stream broke \(RemoteProtocolError\)"):
        with client.reading_stream():
            raise httpx.RemoteProtocolError("peer closed")
    with pytest.raises(KeyError):  # anything else passes through untouched
        with client.reading_stream():
            raise KeyError("x")
