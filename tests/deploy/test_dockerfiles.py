"""The images install evalserve as the Makefile does and run it as the deploy files expect."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from evalserve.settings import Settings
from tests.conftest import ROOT
from tests.deploy.dockerfile import Instruction, env_names, makefile_pins, parse_dockerfile
from tests.deploy.variables import DEPLOY, known_variables

CPU = DEPLOY / "Dockerfile.cpu"
GPU = DEPLOY / "Dockerfile"
PINS = makefile_pins(ROOT / "Makefile")


def _runs(instructions: list[Instruction]) -> list[str]:
    return [i.args for i in instructions if i.keyword == "RUN"]


def _last(instructions: list[Instruction], keyword: str) -> str:
    found = [i.args for i in instructions if i.keyword == keyword]
    assert found, f"no {keyword} instruction"
    return found[-1]


def _env(instructions: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            values.update(w.split("=", 1) for w in shlex.split(ins.args) if "=" in w)
    return values


def test_the_cpu_image_installs_the_makefile_torch_first_from_the_cpu_index() -> None:
    runs = _runs(parse_dockerfile(CPU))
    torch_step = next(i for i, r in enumerate(runs) if PINS.torch in r.split())
    project_step = next(i for i, r in enumerate(runs) if f"-c {PINS.constraints}" in r)
    assert torch_step < project_step, "torch must be installed before the project"
    assert "download.pytorch.org/whl/cpu" in runs[torch_step]
    # constraints.txt pins the +cpu build: the one the CPU index serves under that version
    pinned = re.search(r"^torch==(\S+)$", (ROOT / PINS.constraints).read_text(), re.M)
    assert pinned and pinned.group(1) == PINS.torch.split("==")[1] + "+cpu"


@pytest.mark.parametrize("path", [CPU, GPU], ids=["cpu", "gpu"])
def test_each_image_installs_the_makefile_no_deps_wheels(path) -> None:
    no_deps = [set(r.split("--no-deps", 1)[1].split()) for r in _runs(parse_dockerfile(path))
               if "--no-deps" in r]
    assert no_deps, f"{path.name} installs no --no-deps wheels"
    assert {w for w in set.union(*no_deps) if "==" in w} == PINS.no_deps


@pytest.mark.parametrize("path", [CPU, GPU], ids=["cpu", "gpu"])
def test_each_image_runs_evalserve_serve_as_a_non_root_user(path) -> None:
    instructions = parse_dockerfile(path)
    user = _last(instructions, "USER")
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    start = _last(instructions, "ENTRYPOINT" if path is GPU else "CMD")
    assert json.loads(start) == ["evalserve", "serve"]
    creates = " ".join(_runs(instructions))
    assert "useradd" in creates and "--uid 10001" in creates  # the uid k8s runAsUser names


@pytest.mark.parametrize("path", [CPU, GPU], ids=["cpu", "gpu"])
def test_each_image_keeps_data_dir_in_a_volume_owned_by_its_user(path) -> None:
    instructions = parse_dockerfile(path)
    data_dir = _env(instructions)["DATA_DIR"]
    assert data_dir in json.loads(_last(instructions, "VOLUME"))
    assert any("chown" in r and data_dir in r for r in _runs(instructions))


@pytest.mark.parametrize("path", [CPU, GPU], ids=["cpu", "gpu"])
def test_each_image_checks_its_health_with_the_healthcheck_script(path) -> None:
    instructions = parse_dockerfile(path)
    copies = [i.args.split() for i in instructions if i.keyword == "COPY"]
    assert ["deploy/healthcheck.py", "/app/healthcheck.py"] in copies
    check = _last(instructions, "HEALTHCHECK")
    assert "--start-period=" in check  # the model loads first
    command = json.loads(check.split("CMD", 1)[1])
    assert command[-1] == "/app/healthcheck.py"


@pytest.mark.parametrize("path", [CPU, GPU], ids=["cpu", "gpu"])
def test_every_image_variable_is_a_setting_or_a_library_variable(path) -> None:
    assert env_names(parse_dockerfile(path)) - known_variables() == set()


def test_the_cpu_image_exposes_the_default_ports() -> None:
    instructions = parse_dockerfile(CPU)
    env = _env(instructions)
    defaults = Settings.model_fields
    assert int(env["PORT"]) == defaults["port"].default
    assert int(env["METRICS_PORT"]) == defaults["metrics_port"].default
    assert set(_last(instructions, "EXPOSE").split()) == {env["PORT"], env["METRICS_PORT"]}
    # the converted bundled model is kept in the image, not in the DATA_DIR volume
    assert not env["MODEL_CACHE_DIR"].startswith(env["DATA_DIR"])
