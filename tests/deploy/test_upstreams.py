"""deploy/upstreams.yaml is a file the router reads, naming the vLLM service of the stack."""

from __future__ import annotations

import importlib.util
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.variables import DEPLOY, interpolate

UPSTREAMS = DEPLOY / "upstreams.yaml"


def test_every_model_routes_to_the_vllm_service_and_falls_back_to_known_models() -> None:
    config = yaml.safe_load(UPSTREAMS.read_text())
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["vllm"]
    served = interpolate(next(a.split("=", 1)[1] for a in compose["command"]
                              if a.startswith("--served-model-name=")))
    names = {m["name"] for m in config["models"]}
    for model in config["models"]:
        assert set(model["fallbacks"]) <= names - {model["name"]}
        for endpoint in model["endpoints"]:
            assert set(endpoint) <= {"url", "api_key", "upstream_model", "weight",
                                     "max_concurrency", "timeout"}
            url = urlsplit(endpoint["url"])
            assert (url.hostname, url.port, url.path) == ("vllm", 8000, "/v1")
            # the name vLLM serves, as compose starts it (its default MODEL_ID)
            assert endpoint["upstream_model"] == served
            assert endpoint["weight"] > 0 and endpoint["max_concurrency"] >= 1


@pytest.mark.skipif(importlib.util.find_spec("evalserve.engines.router") is None,
                    reason="the router (evalserve.engines.router) is not in this tree")
def test_the_router_loads_it() -> None:
    from evalserve.engines.router.config import load_upstreams

    config = load_upstreams(UPSTREAMS)
    assert [m.name for m in config.models] == ["Qwen/Qwen2.5-0.5B-Instruct"]
