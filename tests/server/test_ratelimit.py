"""Rate limits: seed 001 tiers, RATE_LIMITS overrides, per key and model, 429 + Retry-After."""

from __future__ import annotations

import pytest

from evalserve.errors import ConfigurationError, RateLimitError
from evalserve.server.ratelimit import RateLimiter, parse_rate_limits, tier_for
from tests.server.openai_app import chat_body, make_settings, running_app


@pytest.mark.parametrize(("model", "limit"), [
    ("mistralai/Mistral-7B-v0.1", "100/minute"),
    ("meta-llama/Llama-2-7b-chat-hf", "100/minute"),
    ("meta-llama/Llama-2-13b-chat-hf", "50/minute"),
    ("mosaicml/mpt-30b", "40/minute"),
    ("tiiuae/falcon-40b", "40/minute"),
    ("meta-llama/Llama-2-70b-chat-hf", "20/minute"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "100/minute"),
    ("SmolLM2-135M-Instruct", "100/minute"),
    ("gpt2", "100/minute"),
])
def test_seed_tiers_by_model_size(model: str, limit: str) -> None:
    assert tier_for(model) == limit


def test_overrides_parse_and_bad_entries_say_how_to_fix() -> None:
    assert parse_rate_limits("org/m-7b=5/second; *=1000/minute") == {
        "org/m-7b": "5/second", "*": "1000/minute"}
    assert parse_rate_limits(None) == {}
    with pytest.raises(ConfigurationError, match="30/minute"):
        parse_rate_limits("m=lots")
    with pytest.raises(ConfigurationError, match="model-id=30/minute"):
        parse_rate_limits("5/second")


async def test_limit_is_per_identity_and_model(settings) -> None:  # noqa: ANN001
    limiter = RateLimiter.from_settings(make_settings(settings, rate_limits="a=2/minute"))
    await limiter.hit("k1", "a")
    await limiter.hit("k1", "a")
    with pytest.raises(RateLimitError) as info:
        await limiter.hit("k1", "a")
    assert 1 <= info.value.retry_after <= 60 and "2 per 1 minute" in info.value.message
    await limiter.hit("k2", "a")  # another key has its own window
    await limiter.hit("k1", "mistral-7b")  # another model has its own limit (tier 100/minute)
    assert str(limiter.limit_for("mistral-7b")) == "100 per 1 minute"
    await limiter.close()


async def test_http_429_envelope_with_retry_after(settings) -> None:  # noqa: ANN001
    s = make_settings(settings, rate_limits="scripted=2/minute", api_token="one,two")
    async with running_app(s, token="one") as (_, client):
        for _ in range(2):
            assert (await client.post("/v1/chat/completions", json=chat_body())).status_code == 200
        r = await client.post("/v1/chat/completions", json=chat_body())
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert "scripted" in r.json()["error"]["message"]
        # completions share the model's window; another API key does not
        r = await client.post("/v1/completions", json={"model": "scripted", "prompt": "x"})
        assert r.status_code == 429
        other = await client.post("/v1/chat/completions", json=chat_body(),
                                  headers={"Authorization": "Bearer two"})
        assert other.status_code == 200


async def test_memory_window_moves(settings, monkeypatch) -> None:  # noqa: ANN001
    now = [100.0]
    monkeypatch.setattr("evalserve.server.ratelimit.time.monotonic", lambda: now[0])
    limiter = RateLimiter.from_settings(make_settings(settings, rate_limits="m=2/minute"))
    await limiter.hit("k", "m")
    now[0] += 30
    await limiter.hit("k", "m")
    with pytest.raises(RateLimitError) as info:
        await limiter.hit("k", "m")
    assert info.value.retry_after == 30  # the first hit leaves the window in 30 s
    now[0] += 30.5
    await limiter.hit("k", "m")  # one slot freed, not the whole window
    with pytest.raises(RateLimitError):
        await limiter.hit("k", "m")
