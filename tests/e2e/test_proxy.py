"""Proxy mode for real: an evalserve whose `openai` engine fronts a second evalserve process
(standing in for `vllm serve`); the upstream is killed (502 envelope) and restarted on the
same port (the proxy recovers)."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest

from tests.e2e.server import ServerProcess, client_for
from tests.e2e.test_openai_api import SCHEMA

pytestmark = pytest.mark.e2e

MODEL = "SmolLM2-135M-Instruct"


@pytest.fixture
def pair(server_factory) -> tuple[ServerProcess, ServerProcess]:  # noqa: ANN001
    upstream = server_factory(env={"RATE_LIMITS": "*=10000/minute"})
    proxy = server_factory(env={"VLLM_ENDPOINT": upstream.url + "/v1/completions",
                                "UPSTREAM_RETRIES": "1", "UPSTREAM_TIMEOUT": "60"})
    return upstream, proxy


def ask(client: openai.OpenAI, content: str, **kw: object):  # noqa: ANN201
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], **kw)  # type: ignore[arg-type]


def test_openai_client_through_the_proxy_then_upstream_outage(pair) -> None:  # noqa: ANN001
    upstream, proxy = pair
    via, direct = client_for(proxy), client_for(upstream)
    assert [m.id for m in via.models.list().data] == [MODEL]
    health = httpx.get(proxy.url + "/health").json()
    assert health["model"] == MODEL and health["model_loaded"] is True

    # greedy answers are the same through the proxy as from the upstream directly
    proxied = ask(via, "Say hello.", max_tokens=6, temperature=0, logprobs=True, top_logprobs=2)
    straight = ask(direct, "Say hello.", max_tokens=6, temperature=0)
    assert proxied.choices[0].message.content == straight.choices[0].message.content
    assert proxied.usage.completion_tokens == straight.usage.completion_tokens
    entries = proxied.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == proxied.choices[0].message.content
    assert all(len(e.top_logprobs) == 2 for e in entries)

    streamed = "".join(c.choices[0].delta.content or "" for c in ask(
        via, "Say hello.", max_tokens=6, temperature=0, stream=True) if c.choices)
    assert streamed == straight.choices[0].message.content

    # structured output is forwarded as response_format and enforced by the upstream
    rated = ask(via, "Rate 'Paris' as the capital of France, 1 to 5.", max_tokens=24,
                temperature=0, response_format={"type": "json_schema", "json_schema": {
                    "name": "rating", "schema": SCHEMA, "strict": True}})
    jsonschema.validate(json.loads(rated.choices[0].message.content), SCHEMA)
    text = via.completions.create(model=MODEL, prompt="1, 2, 3,", max_tokens=3, temperature=0)
    assert text.choices[0].text and text.usage.prompt_tokens > 0

    # the upstream dies: a 502 envelope, not a hang or a 500
    upstream.kill()
    r = httpx.post(proxy.url + "/v1/chat/completions", timeout=30, json={
        "model": MODEL, "max_tokens": 2, "temperature": 0.9,
        "messages": [{"role": "user", "content": "anyone there?"}]})
    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert error["type"] == "upstream_error" and "cannot be reached" in error["message"]

    # the upstream comes back on the same port: the proxy serves again
    upstream.start()
    refused: list[openai.APIStatusError] = []

    def answered() -> object:
        try:
            return ask(via, "Back again?", max_tokens=2, temperature=0.9)
        except openai.APIStatusError as exc:
            refused.append(exc)
            return None

    try:
        again = proxy.wait_for(answered, 60, "the proxy answering again after the upstream "
                               "restarted", interval=0.5)
    except AssertionError as exc:
        raise exc from (refused[-1] if refused else None)
    assert again.choices[0].message.content is not None
