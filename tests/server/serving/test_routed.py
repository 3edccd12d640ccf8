"""The OpenAI surface over the router: `/v1/models` lists every routed model, completions and
chat reach the model the client names, `/health` lists the endpoints, and seed 001's tiers and
`RATE_LIMITS` apply per routed model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from evalserve.server.ratelimit import RateLimiter
from evalserve.settings import Settings
from tests.engines.router.fakes import Fleet, models
from tests.server.openai_app import make_settings, running_app
from tests.server.routes.test_health import HEALTH_KEYS

A, B, C = "http://a:8000/v1", "http://b:8000/v1", "http://c:8000/v1"
CONFIG = models(("judge", [A]),
                ("other", [{"url": B, "upstream_model": "org/Other-13B"}]),
                ("tiny", [{"url": C, "upstream_model": "org/Tiny-70B-Instruct"}]),
                ("capped", [A]))
CONFIG["models"][3]["rate_limit"] = "2/minute"


def routed_settings(settings: Settings, tmp_path: Path, **overrides: Any) -> Settings:
    path = tmp_path / "upstreams.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return make_settings(settings, upstreams_file=path, **overrides)


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 4, "temperature": 0.7,
            "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_models_completions_and_chat_follow_the_client_model(
        settings: Settings, tmp_path: Path) -> None:
    fleet = Fleet(CONFIG)
    async with running_app(routed_settings(settings, tmp_path), fleet.router) as (_, client):
        listed = (await client.get("/v1/models")).json()["data"]
        assert [m["id"] for m in listed] == ["judge", "other", "tiny", "capped"]
        assert (await client.get("/v1/models/tiny")).json()["id"] == "tiny"

        reply = (await client.post("/v1/chat/completions", json=chat("other"))).json()
        assert (reply["model"], reply["choices"][0]["message"]["content"]) == ("other", B)
        assert [b["model"] for b in fleet[B].bodies] == ["org/Other-13B"]

        texts = (await client.post("/v1/completions", json={
            "model": "tiny", "prompt": ["a", "b"], "max_tokens": 2, "temperature": 0.7})).json()
        assert [c["text"] for c in texts["choices"]] == [C, C]
        assert [b["model"] for b in fleet[C].bodies] == ["org/Tiny-70B-Instruct"] * 2

        streamed = await client.post("/v1/chat/completions", json=chat("judge", stream=True))
        assert f'"content":"{A}"' in streamed.text and streamed.text.rstrip().endswith(
            "[DONE]")

        missing = await client.post("/v1/chat/completions", json=chat("nope"))
        assert missing.status_code == 404
        assert "use one of: judge, other, tiny, capped" in missing.json()["error"]["message"]


async def test_health_keeps_the_seed_shape_and_lists_the_endpoints(
        settings: Settings, tmp_path: Path) -> None:
    fleet = Fleet(CONFIG)
    fleet[C].models_down = True  # down at start: out of rotation
    async with running_app(routed_settings(settings, tmp_path), fleet.router) as (_, client):
        body = (await client.get("/health")).json()
    assert set(body) == HEALTH_KEYS | {"upstreams"}
    assert (body["status"], body["model_loaded"], body["model"]) == ("healthy", True, "judge")
    by_url = {(e["model"], e["url"]): e for e in body["upstreams"]}
    assert set(by_url) == {("judge", A), ("other", B), ("tiny", C), ("capped", A)}
    tiny = by_url[("tiny", C)]
    assert (tiny["healthy"], tiny["upstream_model"]) == (False, "org/Tiny-70B-Instruct")
    assert "cannot be reached" in tiny["last_error"]
    assert by_url[("judge", A)]["healthy"] is True


async def test_a_routed_rate_limit_refuses_the_third_prompt(settings: Settings,
                                                            tmp_path: Path) -> None:
    fleet = Fleet(CONFIG)
    async with running_app(routed_settings(settings, tmp_path), fleet.router) as (_, client):
        codes = [(await client.post("/v1/chat/completions", json=chat("capped"))).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        assert (await client.post("/v1/chat/completions", json=chat("judge"))).status_code \
            == 200  # another routed model has its own window


@pytest.mark.parametrize(("rate_limits", "expected"), [
    (None, {"judge": "100 per 1 minute", "other": "50 per 1 minute",
            "tiny": "20 per 1 minute", "capped": "2 per 1 minute"}),
    ("*=500/minute", {"judge": "500 per 1 minute", "other": "500 per 1 minute",
                      "tiny": "500 per 1 minute", "capped": "2 per 1 minute"}),
    ("capped=9/second;tiny=7/minute", {"judge": "100 per 1 minute", "tiny": "7 per 1 minute",
                                       "capped": "9 per 1 second"}),
])
def test_each_routed_model_gets_its_tier_its_file_limit_or_its_override(
        settings: Settings, tmp_path: Path, rate_limits: str | None,
        expected: dict[str, str]) -> None:
    limiter = RateLimiter.from_settings(routed_settings(settings, tmp_path,
                                                        rate_limits=rate_limits))
    assert {m: str(limiter.limit_for(m)) for m in expected} == expected
