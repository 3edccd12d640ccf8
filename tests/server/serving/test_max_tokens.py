"""`MAX_TOKENS_PER_REQUEST` on every route that takes a token budget: a larger ask is a 400
naming the field and the setting, before the engine sees anything; an ask within it reaches the
engine as sent. Regression: `/generate` with a raw prompt and `max_tokens: 576458672` ran to
the end of the context (minutes on two cores) while a job ran."""

from __future__ import annotations

import pytest

from evalserve.settings import Settings
from tests.fakes import ScriptedEngine
from tests.server.openai_app import chat_body, make_settings, running_app

LIMIT = 32
ROUTES = [
    ("/v1/chat/completions", "max_tokens", chat_body()),
    ("/v1/chat/completions", "max_completion_tokens", chat_body()),
    ("/v1/completions", "max_tokens", {"model": "scripted", "prompt": "hi"}),
    ("/generate", "max_tokens", {"prompt": "hi"}),
    ("/generate", "max_new_tokens", {"prompt": "hi"}),
    ("/generate", "max_new_tokens", {"text": "a text to summarise"}),
]


@pytest.mark.parametrize(("path", "field", "body"), ROUTES)
async def test_a_budget_over_the_limit_is_a_422_and_within_it_reaches_the_engine(
        settings: Settings, path: str, field: str, body: dict) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    async with running_app(make_settings(settings, max_tokens_per_request=LIMIT,
                                         max_new_tokens=16), engine) as (_, client):
        over = await client.post(path, json={**body, field: 576458672})
        assert over.status_code == 422, over.text
        error = over.json()["error"]
        assert error["message"] == (
            f"{field} is 576458672; this server generates at most {LIMIT} tokens per request "
            "(MAX_TOKENS_PER_REQUEST): ask for fewer")
        assert engine.requests == []
        within = await client.post(path, json={**body, field: LIMIT})
        assert within.status_code == 200, within.text
    assert [r.max_tokens for r in engine.requests] == [LIMIT]


async def test_without_a_limit_a_large_budget_reaches_the_engine(settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    async with running_app(make_settings(settings, max_tokens_per_request=0), engine) as (
            _, client):
        r = await client.post("/generate", json={"prompt": "hi", "max_tokens": 100_000})
        assert r.status_code == 200, r.text
    assert [r.max_tokens for r in engine.requests] == [100_000]
