"""`evalserve serve`: options and environment become the settings the app is built with and
uvicorn is started with; nothing listens (uvicorn.run and build_app are stand-ins)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from evalserve.cli.main import app
from evalserve.server import app as server_app
from evalserve.settings import Settings
from tests.cli.helpers import run_main


@dataclass
class Started:
    """What `serve` built and what it asked uvicorn to run."""

    built: list[Settings] = field(default_factory=list)
    runs: list[tuple[object, dict[str, Any]]] = field(default_factory=list)
    app: object = field(default_factory=object)

    @property
    def settings(self) -> Settings:
        [settings] = self.built
        return settings

    @property
    def run_kwargs(self) -> dict[str, Any]:
        [(served, kwargs)] = self.runs
        assert served is self.app
        return kwargs


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[Started]:
    record = Started()

    def build_app(settings: Settings) -> object:
        record.built.append(settings)
        return record.app

    monkeypatch.setattr(server_app, "build_app", build_app)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: record.runs.append((app, kw)))
    root = logging.getLogger()
    level = root.level
    yield record
    root.setLevel(level)  # serve sets the root level from LOG_LEVEL


def test_defaults(started: Started) -> None:
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert (started.settings.host, started.settings.port) == ("0.0.0.0", 8000)
    assert started.settings.engine == "transformers" and started.settings.model_name is None
    assert started.run_kwargs == {"host": "0.0.0.0", "port": 8000, "log_level": "info",
                                  "timeout_graceful_shutdown": 5}


def test_options_build_the_settings_and_the_bind_address(started: Started) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "127.0.0.1", "--port", "9123",
                                      "--engine", "openai", "--model", "my-model"])
    assert result.exit_code == 0, result.output
    settings = started.settings
    assert (settings.host, settings.port) == ("127.0.0.1", 9123)
    assert (settings.engine, settings.model_name) == ("openai", "my-model")
    assert (started.run_kwargs["host"], started.run_kwargs["port"]) == ("127.0.0.1", 9123)


def test_environment_applies_and_options_win(monkeypatch: pytest.MonkeyPatch,
                                             started: Started) -> None:
    monkeypatch.setenv("HOST", "10.0.0.1")
    monkeypatch.setenv("PORT", "7000")
    monkeypatch.setenv("ENGINE", "openai")
    result = CliRunner().invoke(app, ["serve", "--port", "7001"])
    assert result.exit_code == 0, result.output
    assert (started.settings.host, started.settings.port) == ("10.0.0.1", 7001)
    assert started.settings.engine == "openai"
    assert started.run_kwargs["port"] == 7001


def test_vllm_endpoint_selects_the_openai_engine(monkeypatch: pytest.MonkeyPatch,
                                                 started: Started) -> None:
    monkeypatch.setenv("VLLM_ENDPOINT", "http://vllm:8000/v1/completions")
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert started.settings.engine == "openai"
    assert started.settings.upstream_base_url == "http://vllm:8000/v1"


def test_log_level_reaches_uvicorn_and_the_root_logger(monkeypatch: pytest.MonkeyPatch,
                                                        started: Started) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert started.run_kwargs["log_level"] == "debug"
    assert logging.getLogger().level == logging.DEBUG


@pytest.mark.parametrize(("args", "env", "named"), [
    (["--port", "70000"], {}, "PORT=70000"),
    (["--engine", "tgi"], {}, "ENGINE='tgi'"),
    ([], {"MAX_NUM_SEQS": "lots"}, "MAX_NUM_SEQS='lots'"),
    ([], {"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud'"),
])
def test_a_bad_setting_stops_with_its_name_before_anything_starts(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, started: Started,
        args: list[str], env: dict[str, str], named: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert run_main(monkeypatch, "serve", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: invalid configuration: {named}: ")
    assert "Traceback" not in err
    assert started.built == [] and started.runs == []
