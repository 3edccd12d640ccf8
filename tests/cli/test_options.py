"""The shared `--engine` and `--model` options: unset they leave the environment in charge,
given they override it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import typer
from typer.testing import CliRunner

from evalserve.cli import engine as engine_cmd
from evalserve.cli import generate as generate_cmd
from evalserve.cli.main import app
from evalserve.cli.options import EngineOpt, ModelOpt
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine

probe = typer.Typer()


@probe.command()
def show(engine: EngineOpt = None, model: ModelOpt = None) -> None:
    typer.echo(f"engine={engine!r} model={model!r}")


@probe.command()
def other() -> None:
    """A second command, so `show` is a subcommand."""


@pytest.mark.parametrize(("args", "shown"), [
    ([], "engine=None model=None"),
    (["--engine", "vllm"], "engine='vllm' model=None"),
    (["--model", "/models/qwen", "--engine", "openai"], "engine='openai' model='/models/qwen'"),
])
def test_options_parse_to_optional_strings(args: list[str], shown: str) -> None:
    result = CliRunner().invoke(probe, ["show", *args])
    assert result.exit_code == 0, result.output
    assert result.output == shown + "\n"


def test_help_names_the_choices_and_the_environment_variables() -> None:
    result = CliRunner().invoke(probe, ["show", "--help"])
    assert result.exit_code == 0, result.output
    assert "transformers | openai | vllm (ENGINE)" in result.output
    assert "(MODEL_NAME)" in result.output


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Settings `evalserve models` builds, with a scripted engine instead of a real one."""
    settings_seen: list[Settings] = []

    @contextlib.asynccontextmanager
    async def running(settings: Settings) -> AsyncIterator[ScriptedEngine]:
        settings_seen.append(settings)
        yield ScriptedEngine(lambda r: "")

    monkeypatch.setattr(generate_cmd, "running", running)  # `models`
    monkeypatch.setattr(engine_cmd, "running", running)  # `generate`, under its spinner
    return settings_seen


def test_unset_options_leave_the_environment_in_charge(
        monkeypatch: pytest.MonkeyPatch, seen: list[Settings]) -> None:
    monkeypatch.setenv("ENGINE", "openai")
    monkeypatch.setenv("MODEL_NAME", "from-env")
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert (seen[0].engine, seen[0].model_name) == ("openai", "from-env")


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch,
                                          seen: list[Settings]) -> None:
    monkeypatch.setenv("ENGINE", "openai")
    monkeypatch.setenv("MODEL_NAME", "from-env")
    result = CliRunner().invoke(app, ["models", "--engine", "vllm", "--model", "from-cli"])
    assert result.exit_code == 0, result.output
    assert (seen[0].engine, seen[0].model_name) == ("vllm", "from-cli")
