"""deploy/k8s: every manifest is a valid Kubernetes object (the client's API models, unknown
fields rejected), and the objects fit together and fit evalserve (settings, routes, ports)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from fastapi.routing import APIRoute, iter_route_contexts

from evalserve.server.app import build_app
from evalserve.server.auth import OPEN_PATHS
from evalserve.settings import Settings, load_settings
from tests.conftest import ROOT
from tests.deploy.k8s_models import load_documents, validate
from tests.deploy.live import serving
from tests.deploy.variables import DEPLOY, known_variables
from tests.fakes import ScriptedEngine

K8S = DEPLOY / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
DOCS = [(p.name, doc) for p in MANIFESTS for doc in load_documents(p)]


def _objects(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in DOCS if d["kind"] == kind}


def _evalserve() -> dict[str, Any]:
    """The evalserve container of the evalserve Deployment."""
    pod = _objects("Deployment")["evalserve"]["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "evalserve")


@pytest.mark.parametrize(("name", "doc"), DOCS,
                         ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCS])
def test_every_manifest_is_a_valid_kubernetes_object(name: str, doc: dict[str, Any]) -> None:
    validate(doc)


_DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
               "spec": {"selector": {"matchLabels": {"a": "b"}},
                        "template": {"metadata": {"labels": {"a": "b"}},
                                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def _broken(path: list[str | int], value: Any) -> dict[str, Any]:
    doc = yaml.safe_load(yaml.safe_dump(_DEPLOYMENT))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_CONTAINER = ["spec", "template", "spec", "containers", 0]


@pytest.mark.parametrize(("doc", "message"), [
    (_broken([*_CONTAINER, "readinesProbe"], {"periodSeconds": 5}), "readinesProbe"),
    (_broken([*_CONTAINER, "ports"], [{"containerPort": 80, "nmae": "http"}]), "ports[0].nmae"),
    (_broken(["spec", "template", "metadata", "lables"], {"a": "b"}), "metadata.lables"),
    (_broken([*_CONTAINER, "name"], None), "name"),
    (_broken(["spec", "selector"], None), "selector"),
    (_broken([*_CONTAINER, "ports"], [{"containerPort": "80"}]), "containerPort"),
    (_broken([*_CONTAINER, "env"], [{"name": "PORT", "value": 8000}]), "value"),
    ({**_DEPLOYMENT, "kind": "Deploymnet"}, "V1Deploymnet"),
], ids=["misspelt-field", "misspelt-nested", "misspelt-metadata", "missing-container-name",
        "missing-selector", "port-as-string", "env-value-not-a-string", "unknown-kind"])
def test_the_check_rejects_what_the_api_server_would(doc: dict[str, Any], message: str) -> None:
    validate(_DEPLOYMENT)  # the unbroken one passes
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(doc)


def test_the_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in MANIFESTS} - {"secret.example.yaml"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_same_valid_objects() -> None:
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True,
                              text=True, timeout=60, check=True).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    for doc in docs:
        validate(doc)
    ours = {(d["kind"], d["metadata"]["name"]) for name, d in DOCS if name != "secret.example.yaml"}
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == ours


def test_selectors_pick_the_pods_and_ports_they_name() -> None:
    deployments = _objects("Deployment")
    for name, dep in deployments.items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    for name, svc in _objects("Service").items():
        selector = svc["spec"]["selector"].items()
        pods = [d for d in deployments.values()
                if selector <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(pods) == 1, f"Service {name} selects {len(pods)} Deployments"
        ports = {p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports, name
    pdb = _objects("PodDisruptionBudget")["evalserve"]
    evalserve = deployments["evalserve"]["spec"]
    assert pdb["spec"]["selector"]["matchLabels"] == evalserve["selector"]["matchLabels"]
    hpa = _objects("HorizontalPodAutoscaler")["evalserve"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "evalserve"}
    # the PDB lets one pod go: the HPA's floor keeps another one serving meanwhile
    assert hpa["minReplicas"] > pdb["spec"]["maxUnavailable"]
    assert hpa["minReplicas"] <= deployments["evalserve"]["spec"]["replicas"] <= hpa["maxReplicas"]


def test_evalserve_sets_only_real_settings_and_they_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    container = _evalserve()
    settings = _objects("ConfigMap")["evalserve-settings"]["data"]
    names = set(settings) | {e["name"] for e in container["env"]}
    assert names - known_variables() == set()
    assert [s["configMapRef"]["name"] for s in container["envFrom"]] == ["evalserve-settings"]
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    parsed = load_settings()
    assert parsed.engine == "openai"
    services = _objects("Service")
    for url, name in ((parsed.redis_url, "redis"), (parsed.vllm_endpoint, "vllm")):
        parts = urlsplit(url)
        assert (parts.hostname, parts.port) == (name, services[name]["spec"]["ports"][0]["port"])


def test_every_container_of_the_evalserve_image_sets_only_real_settings() -> None:
    containers = [c for _, d in DOCS if d["kind"] == "Deployment"
                  for key in ("initContainers", "containers")
                  for c in d["spec"]["template"]["spec"].get(key, [])
                  if c["image"].split(":")[0] == "evalserve"]
    assert len(containers) >= 2  # evalserve itself and vLLM's weights download
    for container in containers:
        assert {e["name"] for e in container.get("env", [])} - known_variables() == set()


def test_the_hpa_note_names_metrics_that_metrics_exposes(settings: Settings) -> None:
    named = set(re.findall(r"\bevalserve_\w+", (K8S / "hpa.yaml").read_text()))
    assert named
    with serving(settings, ScriptedEngine(lambda request: "")) as port:
        exposition = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    exposed = set(re.findall(r"^# TYPE (\w+) ", exposition, re.M))
    assert named <= exposed


def test_the_database_url_comes_from_the_secret() -> None:
    env = {e["name"]: e for e in _evalserve()["env"]}
    ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert not ref.get("optional"), "without DATABASE_URL each replica would have its own jobs"
    secret = _objects("Secret")[ref["name"]]
    assert urlsplit(secret["stringData"][ref["key"]]).scheme == "postgresql"
    for name in ("API_TOKEN", "ADMIN_API_TOKEN"):
        token = env[name]["valueFrom"]["secretKeyRef"]
        assert token["name"] == ref["name"] and token["key"] in secret["stringData"]
    assert env["REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


@pytest.fixture
def get_routes(settings: Settings) -> set[str]:
    app = build_app(settings, engine=ScriptedEngine(lambda request: ""))
    return {c.original_route.path for c in iter_route_contexts(app.routes)
            if isinstance(c.original_route, APIRoute) and "GET" in c.original_route.methods}


def test_probes_ask_health_for_healthy_and_the_process_for_liveness(get_routes: set[str]) -> None:
    container = _evalserve()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe"):
        # /health answers 200 while loading: only the script reads "healthy" from its body
        assert container[probe]["exec"]["command"] == ["python", "/app/healthcheck.py"], probe
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # time to load
    liveness = container["livenessProbe"]["httpGet"]
    assert liveness["path"] == "/health" and liveness["path"] in get_routes
    assert liveness["path"] in OPEN_PATHS  # probes send no token
    assert ports[liveness["port"]] == Settings.model_fields["port"].default
    assert ports["metrics"] == Settings.model_fields["metrics_port"].default
    data = _objects("ConfigMap")["evalserve-settings"]["data"]
    assert (int(data["PORT"]), int(data["METRICS_PORT"])) == (ports["http"], ports["metrics"])


def _uvicorn_shutdown_seconds() -> float:
    """`timeout_graceful_shutdown` that `evalserve serve` gives uvicorn."""
    tree = ast.parse((ROOT / "src/evalserve/cli/serve.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "timeout_graceful_shutdown":
            return float(ast.literal_eval(node.value))
    raise AssertionError("evalserve serve no longer sets timeout_graceful_shutdown")


def test_the_grace_period_covers_a_graceful_stop() -> None:
    pod = _objects("Deployment")["evalserve"]["spec"]["template"]["spec"]
    pre_stop = _evalserve()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # the Service stops routing (preStop), uvicorn closes streams, then the runner stores
    # what was graded and hands its jobs back (allow 20 s for that)
    needed = float(pre_stop[1]) + _uvicorn_shutdown_seconds() + 20
    assert pod["terminationGracePeriodSeconds"] >= needed


def test_the_pod_runs_as_the_image_user() -> None:
    pod = _objects("Deployment")["evalserve"]["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert f"--uid {pod['runAsUser']}" in (DEPLOY / "Dockerfile.cpu").read_text()
    assert pod["fsGroup"] == pod["runAsUser"]  # the data volume is writable by it


def test_the_upstreams_configmap_is_deploy_upstreams_yaml() -> None:
    data = _objects("ConfigMap")["evalserve-upstreams"]["data"]
    embedded = yaml.safe_load(data["upstreams.yaml"])
    assert embedded == yaml.safe_load((DEPLOY / "upstreams.yaml").read_text())
    mounts = {m["name"]: m["mountPath"] for m in _evalserve()["volumeMounts"]}
    assert mounts["upstreams"] == "/etc/evalserve"


def test_redis_runs_with_seed_001s_bounds_and_no_persistence() -> None:
    redis = _objects("Deployment")["redis"]["spec"]["template"]["spec"]["containers"][0]
    args = redis["args"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert flags == {"--maxmemory": "2gb", "--maxmemory-policy": "allkeys-lru", "--save": "",
                     "--appendonly": "no"}
