"""The official `openai` client (sync and async) against the real server and bundled model."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import ServerProcess, client_for

pytestmark = pytest.mark.e2e

SCHEMA = {"type": "object", "properties": {"score": {"type": "integer", "minimum": 1,
                                                     "maximum": 5}},
          "required": ["score"], "additionalProperties": False}


def served_model(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_models_list_retrieve_and_unknown(live_server: ServerProcess) -> None:
    client = client_for(live_server)
    models = client.models.list().data
    assert [m.id for m in models] == ["SmolLM2-135M-Instruct"] and models[0].object == "model"
    detail = client.models.retrieve(models[0].id)
    assert detail.id == models[0].id
    raw = httpx.get(live_server.url + "/v1/models/" + models[0].id).json()
    assert raw["status"] == "loaded" and raw["loaded_at"] > 0 and "gpu_memory_usage" in raw
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("meta-llama/Llama-2-7b-chat-hf")
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", max_tokens=2,
                                       messages=[{"role": "user", "content": "hi"}])
    assert "SmolLM2-135M-Instruct" in str(info.value)


def test_sync_completion_with_logprobs_and_usage(live_server: ServerProcess) -> None:
    client = client_for(live_server)
    model = served_model(client)
    r = client.completions.create(model=model, prompt="The capital of France is",
                                  max_tokens=6, temperature=0, logprobs=2)
    choice = r.choices[0]
    assert r.object == "text_completion" and choice.text.strip()
    assert choice.finish_reason in ("stop", "length")
    assert 1 <= r.usage.completion_tokens <= 6 and r.usage.prompt_tokens >= 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    lp = choice.logprobs
    assert "".join(lp.tokens) == choice.text
    assert all(v <= 0 for v in lp.token_logprobs)
    assert lp.text_offset[0] == 0 and lp.text_offset[1] == len(lp.tokens[0])
    # greedy: the chosen token is the most likely one
    assert all(max(top.values()) == pytest.approx(v) for top, v in
               zip(lp.top_logprobs, lp.token_logprobs))


def test_chat_logprobs_and_stream_match_the_unstreamed_answer(live_server: ServerProcess) -> None:
    client = client_for(live_server)
    model = served_model(client)
    messages = [{"role": "user", "content": "Name a colour."}]
    full = client.chat.completions.create(model=model, messages=messages, max_tokens=8,
                                          temperature=0, logprobs=True, top_logprobs=3)
    content = full.choices[0].message.content
    entries = full.choices[0].logprobs.content
    assert content and "".join(e.token for e in entries) == content
    for e in entries:
        tops = [t.logprob for t in e.top_logprobs]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True)
        assert e.logprob == pytest.approx(tops[0]) and bytes(e.bytes).decode() == e.token
    chunks = list(client.chat.completions.create(
        model=model, messages=messages, max_tokens=8, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finals[-1] == full.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


async def test_async_client_json_schema_output_validates(live_server: ServerProcess) -> None:
    async with openai.AsyncOpenAI(base_url=live_server.url + "/v1", api_key="none",
                                  max_retries=0) as client:
        model = (await client.models.list()).data[0].id
        r = await client.chat.completions.create(
            model=model, max_tokens=24, temperature=0.7, seed=5,
            messages=[{"role": "user", "content": "Rate this answer from 1 to 5: 'Paris'."}],
            response_format={"type": "json_schema", "json_schema": {
                "name": "rating", "schema": SCHEMA, "strict": True}})
        data = json.loads(r.choices[0].message.content)
        jsonschema.validate(data, SCHEMA)
        choice = await client.chat.completions.create(
            model=model, max_tokens=4, temperature=0,
            messages=[{"role": "user", "content": "Is the sky blue?"}],
            extra_body={"structured_outputs": {"choice": ["yes", "no"]}})
        assert choice.choices[0].message.content in ("yes", "no")
        stream = await client.completions.create(model=model, prompt="One, two,", max_tokens=4,
                                                 temperature=0, stream=True)
        texts = [c.choices[0].text async for c in stream]
        assert "".join(texts).strip()


def test_cache_hit_and_metrics_move(live_server: ServerProcess) -> None:
    url = live_server.url
    before = httpx.get(url + "/metrics").text
    body = {"model": "SmolLM2-135M-Instruct", "prompt": "Cache me if you can:",
            "max_tokens": 3, "temperature": 0}
    first = httpx.post(url + "/v1/completions", json=body, timeout=60)
    second = httpx.post(url + "/v1/completions", json=body, timeout=60)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.json() == first.json()
    after = httpx.get(url + "/metrics").text
    ep = {"endpoint": "/v1/completions"}
    for name, delta in (("text_cache_hits_total", 1), ("text_cache_misses_total", 1),
                        ("text_generation_seconds_count", 1)):
        assert metric(after, name, **ep) - metric(before, name, **ep) == delta, name
    tokens = first.json()["usage"]["completion_tokens"]
    assert metric(after, "text_generated_tokens_total") - metric(
        before, "text_generated_tokens_total") == tokens
    route = {"route": "/v1/completions", "status": "200"}
    assert metric(after, "evalserve_http_requests_total", **route) - metric(
        before, "evalserve_http_requests_total", **route) == 2


def test_bearer_auth_end_to_end(server_factory) -> None:  # noqa: ANN001
    server = server_factory(env={"API_TOKEN": "e2e-token", "TEXT_GEN_API_TOKEN": "other"})
    r = client_for(server, "other").chat.completions.create(
        model="SmolLM2-135M-Instruct", max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content is not None
    with pytest.raises(openai.AuthenticationError) as info:
        client_for(server, "wrong").models.list()
    assert info.value.status_code == 401
    assert httpx.get(server.url + "/health").json()["model_loaded"] is True
    assert httpx.get(server.url + "/metrics").status_code == 401
