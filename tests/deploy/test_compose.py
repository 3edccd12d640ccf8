"""deploy/docker-compose.yml and nginx.conf: the services, Redis' bounds, healthchecks, the
variables and ports the replicas get, and the proxy settings SSE needs. No Docker needed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from evalserve.settings import Settings, load_settings
from tests.deploy.dockerfile import parse_dockerfile
from tests.deploy.variables import DEPLOY, interpolate, known_variables

COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
REPLICAS = ["evalserve-1", "evalserve-2"]
NGINX = (DEPLOY / "nginx.conf").read_text()
#: The Compose Specification's JSON schema, as docker-compose 1.29.2 ships it
#: (`compose/config/compose_spec.json`, Apache-2.0): unknown keys and wrong shapes fail.
COMPOSE_SPEC = json.loads((Path(__file__).parent / "compose_spec.json").read_text())


def _env(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The service's environment as compose resolves it (`env`: the caller's shell)."""
    raw = SERVICES[service].get("environment", {})
    return {k: interpolate(str(v), env) for k, v in raw.items()}


def _volumes(service: str) -> dict[str, str]:
    return {v.split(":")[1]: v.split(":")[0] for v in SERVICES[service].get("volumes", [])}


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.router.yml"])
def test_the_compose_files_follow_the_compose_specification(name: str) -> None:
    validator = jsonschema.Draft201909Validator(COMPOSE_SPEC)
    doc = yaml.safe_load((DEPLOY / name).read_text())
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(doc)]
    assert errors == []
    broken = {**doc, "services": {**doc["services"]}}
    first = next(iter(broken["services"]))
    broken["services"][first] = {**broken["services"][first], "healthchek": {}}
    assert not validator.is_valid(broken)  # the schema does reject a misspelt key


def test_the_stack_has_its_services_and_only_vllm_needs_the_gpu_profile() -> None:
    assert set(SERVICES) == {"postgres", "redis", *REPLICAS, "lb", "model", "vllm"}
    gpu = {name for name, svc in SERVICES.items() if "gpu" in svc.get("profiles", [])}
    assert gpu == {"model", "vllm"}
    assert all(not SERVICES[s].get("profiles") for s in set(SERVICES) - gpu)
    devices = SERVICES["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    # the CPU stack must start without the gpu profile: nothing outside it depends on it
    for name in set(SERVICES) - gpu:
        assert not set(SERVICES[name].get("depends_on", {})) & gpu, name


def test_redis_is_bounded_as_seed_001_says_and_keeps_nothing() -> None:
    command = SERVICES["redis"]["command"]
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags == {"--maxmemory": "2gb", "--maxmemory-policy": "allkeys-lru", "--save": "",
                     "--appendonly": "no"}
    assert "volumes" not in SERVICES["redis"]


def test_postgres_keeps_its_data_in_a_volume_and_reports_ready() -> None:
    postgres = SERVICES["postgres"]
    assert _volumes("postgres")["/var/lib/postgresql/data"] in COMPOSE["volumes"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


@pytest.mark.parametrize("replica", REPLICAS)
def test_each_replica_shares_the_job_store_and_redis(replica: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(replica)
    assert set(env) - known_variables() == set()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()  # every value parses as its setting
    database = urlsplit(settings.database_url)
    postgres = _env("postgres")
    assert (database.scheme, database.hostname, database.port) == ("postgresql", "postgres", 5432)
    assert (database.username, database.password, database.path) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], "/" + postgres["POSTGRES_DB"])
    assert urlsplit(settings.redis_url).hostname == "redis"
    assert settings.engine == "transformers"  # the CPU stack serves the bundled model
    depends = SERVICES[replica]["depends_on"]
    assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"


def test_the_gpu_profile_points_the_replicas_at_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _env("evalserve-1", {"ENGINE": "openai"}).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.engine == "openai"
    upstream = urlsplit(settings.upstream_base_url)
    command = SERVICES["vllm"]["command"]
    assert upstream.hostname == "vllm" and upstream.port == 8000
    assert not any(arg.startswith("--port") and arg != "--port=8000" for arg in command)
    # vLLM reads the weights the `model` service downloaded, from the same volume
    model_dir = _env("model")["MODEL_DIR"]
    assert _volumes("model")[model_dir] == _volumes("vllm")["/models"].split(":")[0]
    served = next(a.split("=", 1)[1] for a in command if a.startswith("--served-model-name="))
    assert interpolate(served) == _env("model")["MODEL_ID"]
    assert set(_env("model")) - known_variables() == set()


def test_the_replicas_are_distinct_and_keep_their_own_data_dir() -> None:
    ids = {_env(r)["REPLICA_ID"] for r in REPLICAS}
    assert len(ids) == len(REPLICAS)
    image_env = [i.args for i in parse_dockerfile(DEPLOY / "Dockerfile.cpu") if i.keyword == "ENV"]
    data_dir = re.search(r"\bDATA_DIR=(\S+)", " ".join(image_env)).group(1)
    volumes = [_volumes(r)[data_dir] for r in REPLICAS]
    # a shared DATA_DIR would let a starting replica requeue the other's running jobs
    assert len(set(volumes)) == len(volumes)
    assert all(v in COMPOSE["volumes"] for v in volumes)


@pytest.mark.parametrize("replica", REPLICAS)
def test_each_replica_is_healthy_only_when_health_says_so(replica: str) -> None:
    check = SERVICES[replica]["healthcheck"]
    assert check["test"] == ["CMD", "python", "/app/healthcheck.py"]
    assert "start_period" in check  # the model loads first
    assert SERVICES[replica]["build"]["dockerfile"] == "deploy/Dockerfile.cpu"


def test_one_port_load_balances_the_replicas_on_their_port() -> None:
    lb = SERVICES["lb"]
    assert _volumes("lb")["/etc/nginx/nginx.conf"] == "./nginx.conf"
    assert interpolate(lb["ports"][0]) == f"{Settings.model_fields['port'].default}:8000"
    assert re.search(r"listen 8000;", NGINX)
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", NGINX, re.M)
    assert sorted(servers) == [(r, str(Settings.model_fields["port"].default)) for r in REPLICAS]
    assert all(SERVICES["lb"]["depends_on"][r]["condition"] == "service_healthy" for r in REPLICAS)
    # only the balancer publishes a port: the replicas trust X-Forwarded-For from it alone
    assert all("ports" not in SERVICES[r] for r in REPLICAS)


def test_nginx_passes_streams_through_and_waits_as_long_as_evalserve() -> None:
    directives = dict(re.findall(r"^\s*(proxy_\w+)\s+([^;]+);", NGINX, re.M))
    assert directives["proxy_buffering"] == "off"  # else SSE events wait in nginx's buffer
    assert directives["proxy_http_version"] == "1.1"
    timeout = int(directives["proxy_read_timeout"].rstrip("s"))
    assert timeout > Settings.model_fields["upstream_timeout"].default
    assert timeout > 15 * Settings.model_fields["sse_polling_interval"].default  # stream pings


def test_the_router_override_routes_both_replicas_through_upstreams_yaml() -> None:
    override = yaml.safe_load((DEPLOY / "docker-compose.router.yml").read_text())["services"]
    assert set(override) == set(REPLICAS)
    for replica in REPLICAS:
        path = override[replica]["environment"]["UPSTREAMS_FILE"]
        assert _volumes(replica)[path.rsplit("/", 1)[0] + "/upstreams.yaml"] == "./upstreams.yaml"
        assert set(override[replica]["environment"]) - known_variables() == set()
