"""The `evalserve` app: every command is registered, every option shows in its `--help`, and
`main` translates errors through `run_cli`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from evalserve.cli.main import app
from tests.cli.helpers import run_main

COMMANDS = ["serve", "generate", "models", "metrics", "calibrate", "download", "evaluate",
            "agree", "bench"]


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, command) of every leaf command under `group`."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


ALL = dict(_commands(typer.main.get_command(app)))


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: evalserve" in result.output
    listed = [line.split()[1] for line in result.output.splitlines()
              if line.startswith("│ ") and len(line.split()) > 1
              and not line.split()[1].startswith("-")]
    assert [name for name in listed if name in COMMANDS] == COMMANDS
    assert {path[0] for path in ALL} == set(COMMANDS)
    assert ("bench", "predict") in ALL


@pytest.mark.parametrize("path", sorted(ALL), ids=" ".join)
def test_every_option_of_every_command_is_in_its_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: evalserve {' '.join(path)}" in result.output
    options = [opt for param in ALL[path].params for opt in param.opts if opt.startswith("--")]
    assert options, f"{path} declares no options"
    for option in options:
        assert option in result.output, f"{option} missing from `{' '.join(path)} --help`"


def test_engine_and_model_options_are_the_shared_ones() -> None:
    """`evaluate`'s `--model` is also the job's judge model with `--server`: its help says
    both, the local meaning first."""
    for path, command in ALL.items():
        helps = {opt: param.help for param in command.params for opt in param.opts}
        if "--engine" in helps:
            assert helps["--engine"] == "transformers | openai | vllm (ENGINE)", path
            if path == ("evaluate",):
                assert helps["--model"].startswith(
                    "The judge model: in-process the local model directory or .gguf file to "
                    "load (MODEL_NAME); with --server one the server serves"), path
            else:
                assert helps["--model"] == ("Local model directory or .gguf file "
                                            "(MODEL_NAME)"), path


def test_main_turns_a_library_error_into_exit_code_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert run_main(monkeypatch, "download") == 2
    err = capsys.readouterr().err
    assert err == "error: no model to download: pass --model-id or set MODEL_ID\n"


def test_main_help_exits_0(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture) -> None:
    assert run_main(monkeypatch, "--help") == 0
    out = capsys.readouterr().out
    assert "Usage:" in out and all(name in out for name in COMMANDS)


def test_main_without_a_command_shows_the_help(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    code = run_main(monkeypatch)
    captured = capsys.readouterr()
    assert code in (0, 2)
    assert "Usage:" in captured.out + captured.err
