"""Two server processes sharing a real redis-server: one response cache, one rate limit."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.redis_server import RedisServer, redis_server_fixture

pytestmark = pytest.mark.e2e

MODEL = "SmolLM2-135M-Instruct"
redis_server = pytest.fixture(scope="module")(redis_server_fixture)


@pytest.fixture
def replicas(server_factory, redis_server: RedisServer) -> list[ServerProcess]:  # noqa: ANN001
    env = {"REDIS_URL": redis_server.url, "RATE_LIMITS": f"{MODEL}=3/minute",
           "API_TOKEN": "cache-key,limit-key"}
    return [server_factory(env=env), server_factory(env=env)]


def post(server: ServerProcess, key: str, body: dict) -> httpx.Response:
    return httpx.post(server.url + "/v1/completions", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {key}"})


def test_cache_and_rate_limit_are_shared_across_replicas(replicas, redis_server) -> None:  # noqa: ANN001
    a, b = replicas
    body = {"model": MODEL, "prompt": "Shared cache across replicas:", "max_tokens": 3,
            "temperature": 0}
    first = post(a, "cache-key", body)
    second = post(b, "cache-key", body)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.json() == first.json()

    import redis

    keys = redis.Redis.from_url(redis_server.url).keys("vllm:*")
    assert any(k.startswith(b"vllm:v1:completions:") for k in keys)

    one = {"model": MODEL, "prompt": "x", "max_tokens": 1, "temperature": 0.9}
    statuses = [post(server, "limit-key", one) for server in (a, a, b, b)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    refused = statuses[-1]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
