"""Rate limits: seed 001 tiers, RATE_LIMITS overrides, per key and model, 429 + Retry-After;
costs (prompts, items, texts), tokens per minute, identity, bounded windows, Redis."""

from __future__ import annotations

import pytest

from evalserve.errors import ConfigurationError, RateLimitError
from evalserve.server.ratelimit import RateLimiter, parse_rate_limits, tier_for
from tests.redis_server import redis_server_fixture
from tests.server.openai_app import chat_body, make_settings, running_app

redis_server = pytest.fixture(scope="module")(redis_server_fixture)


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


# ----------------------------------------------------------------------------- costs


async def test_a_prompt_list_is_charged_one_hit_per_prompt_and_n_multiplies(settings) -> None:  # noqa: ANN001
    """Regression: a `/v1/completions` prompt list (`["x"]*200000` with `n: 16`) was one
    "request" to the rate limiter."""
    s = make_settings(settings, rate_limits="scripted=5/minute", api_token="one")
    async with running_app(s, token="one") as (app, client):
        body = {"model": "scripted", "prompt": ["a", "b", "c"]}
        assert (await client.post("/v1/completions", json=body)).status_code == 200
        r = await client.post("/v1/completions", json=body)  # 3 + 3 > 5
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert "3 prompts asked" in r.json()["error"]["message"]
        r = await client.post("/v1/completions", json={"model": "scripted", "prompt": "a",
                                                        "n": 3})
        assert r.status_code == 429  # n = 3 counts 3, as the list did
        r = await client.post("/v1/chat/completions", json=chat_body(n=2))
        assert r.status_code == 200  # 3 + 2 = 5 fits exactly
        assert len(app.state.evalserve.engine.requests) == 3 + 1


async def test_a_request_larger_than_the_whole_limit_is_413_not_a_retry(settings) -> None:  # noqa: ANN001
    """A request costing more than the limit allows at once could never pass: 413 saying how
    many fit, not a 429 inviting an endless retry."""
    s = make_settings(settings, rate_limits="scripted=2/minute")
    async with running_app(s) as (_, client):
        r = await client.post("/v1/completions", json={"model": "scripted",
                                                        "prompt": ["a", "b", "c"]})
    assert r.status_code == 413
    error = r.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "3 prompts" in error["message"] and "at most 2" in error["message"]
    assert "RATE_LIMITS" in error["message"]


async def test_predict_is_charged_per_prompt_against_its_own_limit(settings) -> None:  # noqa: ANN001
    """Regression: only `/v1` was rate-limited; `/predict` (batch lists included) was not.
    It has its own per-caller limit, not the `/v1` model tier (100/minute for a 7B model),
    because a seed 003 grader may push every question at once."""
    s = make_settings(settings, predict_rate_limit="3/minute", rate_limits="scripted=1/minute",
                      batch_mode=True)
    async with running_app(s) as (_, client):
        ok = await client.post("/predict", json={"prompt": ["a", "b"]})
        assert ok.status_code == 200 and len(ok.json()["response"]) == 2
        r = await client.post("/predict", json={"prompt": ["c", "d"]})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert "PREDICT_RATE_LIMIT" not in r.json()["error"]["message"]
        assert "/predict" in r.json()["error"]["message"]
        assert (await client.post("/predict", json={"prompt": "e"})).status_code == 200
        # the /v1 window of the model is a different one
        r = await client.post("/v1/completions", json={"model": "scripted", "prompt": "f"})
        assert r.status_code == 200


async def test_generate_is_charged_one_prompt(settings) -> None:  # noqa: ANN001
    """Regression: `POST /generate` ran the model without any rate limit."""
    s = make_settings(settings, predict_rate_limit="1/minute")
    async with running_app(s) as (_, client):
        assert (await client.post("/generate", json={"prompt": "p"})).status_code == 200
        r = await client.post("/generate", json={"text": "Some text to summarise."})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"


async def test_evaluate_is_charged_its_items_per_caller(settings) -> None:  # noqa: ANN001
    """Regression: `POST /evaluate` had no rate limit: any number of items per minute."""
    from tests.jobs.helpers import items

    s = make_settings(settings, item_rate_limit="3/minute", api_token="one,two")
    async with running_app(s, token="one") as (app, client):
        assert (await client.post("/evaluate", json={"items": items(2)})).status_code == 200
        r = await client.post("/evaluate", json={"items": items(2)})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "items" in r.json()["error"]["message"]
        assert "3 per 1 minute" in r.json()["error"]["message"]
        other = await client.post("/evaluate", json={"items": items(2)},
                                  headers={"Authorization": "Bearer two"})
        assert other.status_code == 200
        assert len(await app.state.evalserve.components.jobs.list()) == 2
        too_many = await client.post("/evaluate", json={"items": items(4)},
                                     headers={"Authorization": "Bearer two"})
    assert too_many.status_code == 413 and "ITEM_RATE_LIMIT" in too_many.json()["error"]["message"]


async def test_a_refused_submission_costs_no_items(settings) -> None:  # noqa: ANN001
    """Defect: `/evaluate` charged the items before validating them, so an invalid
    submission (422) used up the caller's `ITEM_RATE_LIMIT` window, and a job over
    `MAX_ITEMS_PER_JOB` got the rate limit's 413 instead of the documented 422."""
    from tests.jobs.helpers import items

    s = make_settings(settings, item_rate_limit="3/minute", max_items_per_job=2)
    async with running_app(s) as (app, client):
        bad = [{k: v for k, v in i.items() if k != "respuesta"} for i in items(2)]
        r = await client.post("/evaluate", json={"items": bad})
        assert r.status_code == 422 and "lacks the field" in r.json()["error"]["message"]
        r = await client.post("/evaluate", json={"items": items(3)})
        assert r.status_code == 422 and "MAX_ITEMS_PER_JOB" in r.json()["error"]["message"]
        ok = await client.post("/evaluate", json={"items": items(2)})
        assert ok.status_code == 200 and ok.json()["total_items"] == 2
        assert len(await app.state.evalserve.components.jobs.list()) == 1


async def test_metrics_routes_are_charged_their_texts_per_caller(settings) -> None:  # noqa: ANN001
    """Regression: the metrics routes had no rate limit (texts per minute unbounded)."""
    s = make_settings(settings, text_rate_limit="3/minute")
    async with running_app(s) as (app, client):
        r = await client.post("/metrics/readability", json={"texts": ["One. Two.", "Three."]})
        assert r.status_code == 200 and len(r.json()["fkgl"]) == 2
        r = await client.post("/metrics/rouge", json={"predictions": ["a b", "c"],
                                                      "references": ["a b", "d"]})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "2 texts asked" in r.json()["error"]["message"]
        telemetry = app.state.evalserve.components.telemetry
        assert telemetry.limited.labels("texts")._value.get() == 1.0


# ----------------------------------------------------------------------------- tokens/minute


async def test_tokens_per_minute_refuse_the_next_request_once_spent(settings) -> None:  # noqa: ANN001
    """Regression: no tokens-per-minute limit on `/v1` (LiteLLM's tpm): one caller could use
    the whole model with few, long requests."""
    s = make_settings(settings, tokens_per_minute=6, api_token="one,two")
    async with running_app(s, token="one") as (_, client):
        # 3 prompt words + "hello world" (2) = 5 tokens: under budget, the next one passes
        body = {"model": "scripted", "prompt": "a b c"}
        first = await client.post("/v1/completions", json=body)
        assert first.json()["usage"]["total_tokens"] == 5
        second = await client.post("/v1/completions", json=body)  # 10 >= 6 after it
        assert second.status_code == 200
        r = await client.post("/v1/chat/completions", json=chat_body())
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        error = r.json()["error"]
        assert error["type"] == "rate_limit_error" and "TOKENS_PER_MINUTE" in error["message"]
        other = await client.post("/v1/completions", json=body,
                                  headers={"Authorization": "Bearer two"})
        assert other.status_code == 200  # another caller has its own budget


async def test_streamed_tokens_are_counted_too(settings) -> None:  # noqa: ANN001
    s = make_settings(settings, tokens_per_minute=4)
    async with running_app(s) as (_, client):
        body = {"model": "scripted", "prompt": "a b c", "stream": True}
        r = await client.post("/v1/completions", json=body)
        assert r.status_code == 200 and "[DONE]" in r.text
        r = await client.post("/v1/completions", json=body)
    assert r.status_code == 429 and "TOKENS_PER_MINUTE" in r.json()["error"]["message"]


async def test_token_window_moves_in_memory(settings, monkeypatch) -> None:  # noqa: ANN001
    now = [100.0]
    monkeypatch.setattr("evalserve.server.ratelimit.time.monotonic", lambda: now[0])
    limiter = RateLimiter.from_settings(make_settings(settings, tokens_per_minute=10))
    await limiter.spend_tokens("k", "m", 6)
    now[0] += 20
    await limiter.spend_tokens("k", "m", 6)
    await limiter.check_tokens("k", "other-model")  # per model
    with pytest.raises(RateLimitError) as info:
        await limiter.check_tokens("k", "m")
    assert info.value.retry_after == 40  # the first 6 leave the minute in 40 s
    now[0] += 40
    await limiter.check_tokens("k", "m")  # 6 left: under budget again


# ----------------------------------------------------------------------------- identity, bounds


async def test_without_tokens_the_identity_is_the_address_not_the_bearer(settings) -> None:  # noqa: ANN001
    """Regression: without `API_TOKEN` the identity was whatever bearer string was sent, so a
    fresh string gave a fresh window."""
    s = make_settings(settings, rate_limits="scripted=1/minute", predict_rate_limit="1/minute",
                      batch_mode=True)
    async with running_app(s) as (_, client):
        for path, body in (("/v1/chat/completions", chat_body()), ("/predict", {"prompt": "q"})):
            first = await client.post(path, json=body, headers={"Authorization": "Bearer rotate-1"})
            assert first.status_code == 200
        for path, body in (("/v1/chat/completions", chat_body()), ("/predict", {"prompt": "q"})):
            r = await client.post(path, json=body, headers={"Authorization": "Bearer rotate-2"})
            assert r.status_code == 429, path


async def test_memory_windows_are_bounded_least_recently_used_first(settings, monkeypatch) -> None:  # noqa: ANN001
    """Regression: in-memory windows were kept 24 h, unbounded in number (one per identity
    and model ever seen)."""
    limiter = RateLimiter.from_settings(
        make_settings(settings, rate_limits="m=1/minute", rate_limit_max_buckets=2))
    assert limiter.memory is not None and limiter.memory.max_buckets == 2
    await limiter.hit("a", "m")
    await limiter.hit("b", "m")
    with pytest.raises(RateLimitError):
        await limiter.hit("a", "m")  # a is now the most recently used
    await limiter.hit("c", "m")  # drops b's window
    assert len(limiter.memory) == 2
    await limiter.hit("b", "m")  # forgotten, so a fresh window; a's is dropped now
    with pytest.raises(RateLimitError):
        await limiter.hit("c", "m")  # c's window is still kept
    await limiter.hit("a", "m")  # a's was dropped
    assert len(limiter.memory) == 2


def test_bad_item_or_text_limits_say_how_to_fix(settings) -> None:  # noqa: ANN001
    with pytest.raises(ConfigurationError, match="ITEM_RATE_LIMIT.*30/minute"):
        RateLimiter.from_settings(make_settings(settings, item_rate_limit="lots"))
    with pytest.raises(ConfigurationError, match="TEXT_RATE_LIMIT"):
        RateLimiter.from_settings(make_settings(settings, text_rate_limit="1/fortnight"))


# ----------------------------------------------------------------------------- Redis


async def test_redis_windows_honour_the_cost_and_the_token_budget(settings, redis_server) -> None:  # noqa: ANN001
    """The Redis path (shared by replicas) charges the same costs as the memory windows."""
    s = make_settings(settings, redis_url=redis_server.url, rate_limits="m=5/minute",
                      item_rate_limit="4/minute", text_rate_limit="2/minute",
                      tokens_per_minute=10)
    one, two = RateLimiter.from_settings(s), RateLimiter.from_settings(s)  # two replicas
    try:
        assert one.memory is None
        await one.hit("k", "m", 3)
        with pytest.raises(RateLimitError) as info:
            await two.hit("k", "m", 3)
        assert 1 <= info.value.retry_after <= 60
        await two.hit("k", "m", 2)
        await two.hit("other", "m", 5)
        await one.hit_items("k", 4)
        with pytest.raises(RateLimitError):
            await two.hit_items("k", 1)
        await one.hit_texts("k", 2)
        with pytest.raises(RateLimitError):
            await two.hit_texts("k", 1)
        await one.check_tokens("k", "m")
        await one.spend_tokens("k", "m", 7)
        await two.check_tokens("k", "m")  # 7 < 10
        await two.spend_tokens("k", "m", 3)
        with pytest.raises(RateLimitError) as info:
            await one.check_tokens("k", "m")
        assert 1 <= info.value.retry_after <= 60 and "TOKENS_PER_MINUTE" in info.value.message
        await one.check_tokens("k", "other-model")
    finally:
        await one.close()
        await two.close()
