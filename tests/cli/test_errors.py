"""`run_cli`: a library error is one red `error:` line and exit code 2; an abort exits 130;
anything unexpected propagates (a bug shows its traceback)."""

from __future__ import annotations

import io
import sys

import pytest
import typer
from rich.console import Console

from evalserve.cli import errors as cli_errors
from evalserve.cli.errors import run_cli
from evalserve.errors import (
    ConfigurationError,
    EvalserveError,
    InvalidInputError,
    NotFoundError,
    UpstreamTimeoutError,
)

RAISED: dict[str, BaseException] = {}

app = typer.Typer(pretty_exceptions_enable=False)


@app.command()
def fail(kind: str) -> None:
    """Raise what the test put under `kind`."""
    if kind in RAISED:
        raise RAISED[kind]
    typer.echo(f"ran {kind}")


@app.command()
def other() -> None:
    """A second command, so `fail` is a subcommand as in the real app."""


def run(monkeypatch: pytest.MonkeyPatch, *args: str, raises: BaseException | None = None) -> int:
    """Run the test app through `run_cli`; the exit code, 0 when it returned normally."""
    RAISED.clear()
    if raises is not None:
        RAISED["it"] = raises
    monkeypatch.setattr(sys, "argv", ["evalserve", *args])
    try:
        run_cli(app)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.parametrize("exc", [
    EvalserveError("the job failed"),
    InvalidInputError("`predictions` is empty: pass at least one text"),
    NotFoundError("no rubric named 'x'; known rubrics: judge-1-5"),
    ConfigurationError("invalid configuration: PORT=70000: too big"),
    UpstreamTimeoutError("http://vllm:8000/v1 did not answer in 120 s"),
], ids=lambda e: type(e).__name__)
def test_a_library_error_is_one_error_line_and_exit_code_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        exc: EvalserveError) -> None:
    assert run(monkeypatch, "fail", "it", raises=exc) == 2
    out, err = capsys.readouterr()
    assert err == f"error: {exc.message}\n"
    assert out == ""


def test_the_error_line_is_red(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(cli_errors, "err_console",
                        Console(file=screen, force_terminal=True, color_system="standard",
                                width=200))
    assert run(monkeypatch, "fail", "it", raises=NotFoundError("no job 'abc'")) == 2
    assert screen.getvalue() == "\x1b[1;31merror:\x1b[0m no job 'abc'\n"


def test_a_normal_run_returns_without_exiting(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    assert run(monkeypatch, "fail", "nothing") == 0
    assert capsys.readouterr().out == "ran nothing\n"


def test_an_abort_exits_130(monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture) -> None:
    assert run(monkeypatch, "fail", "it", raises=typer.Abort()) == 130
    assert capsys.readouterr().err == "aborted\n"


def test_an_unexpected_exception_propagates_with_its_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        run(monkeypatch, "fail", "it", raises=ZeroDivisionError("division by zero"))


@pytest.mark.parametrize(("args", "message"), [
    (["nosuch"], "No such command 'nosuch'"),
    (["fail"], "Missing"),
])
def test_a_usage_error_shows_usage_and_exits_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, args: list[str],
        message: str) -> None:
    assert run(monkeypatch, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Usage:" in err


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture) -> None:
    assert run(monkeypatch, "fail", "it", raises=KeyboardInterrupt()) == 130
    assert "aborted" in capsys.readouterr().err


def test_typer_exit_keeps_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(monkeypatch, "fail", "it", raises=typer.Exit(3)) == 3


@pytest.mark.parametrize("message", [
    "needs huggingface_hub: pip install 'evalserve[download]'",
    "unknown metric '[/b]'",
])
def test_brackets_in_a_message_are_printed_as_written(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, message: str) -> None:
    assert run(monkeypatch, "fail", "it", raises=ConfigurationError(message)) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_a_long_message_stays_on_one_line(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    message = ("could not reach huggingface.co to download org/model: ConnectError: no route. "
               "Downloads need network access at build time: check the connection or proxy")
    assert run(monkeypatch, "fail", "it", raises=ConfigurationError(message)) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
