"""`evalserve generate` and `evalserve models`: options become the request and the settings;
the engine is a scripted one (the real bundled model: tests/e2e/test_serve.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from typer.testing import CliRunner

from evalserve.cli import engine as engine_cmd
from evalserve.cli import generate as generate_cmd
from evalserve.cli.main import app
from evalserve.engines import registry
from evalserve.engines.base import GenerationRequest, ModelInfo, StreamDelta
from evalserve.errors import EngineUnavailableError
from evalserve.settings import Settings
from tests.cli.helpers import run_main
from tests.fakes import ScriptedEngine

PROMPT = "What is the capital of France?"


@dataclass
class Loaded:
    """What the monkeypatched `running` saw and served."""

    engine: ScriptedEngine
    settings: list[Settings] = field(default_factory=list)

    @property
    def request(self) -> GenerationRequest:
        assert len(self.engine.requests) == 1, self.engine.requests
        return self.engine.requests[0]


def install(monkeypatch: pytest.MonkeyPatch, engine: ScriptedEngine) -> Loaded:
    loaded = Loaded(engine)

    @contextlib.asynccontextmanager
    async def running(settings: Settings) -> AsyncIterator[ScriptedEngine]:
        loaded.settings.append(settings)
        yield engine

    monkeypatch.setattr(generate_cmd, "running", running)  # `models`
    monkeypatch.setattr(engine_cmd, "running", running)  # `generate`, under its spinner
    return loaded


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> Loaded:
    return install(monkeypatch, ScriptedEngine(lambda r: "The capital of France is Paris."))


def test_the_prompt_is_a_chat_message_with_the_settings_budget(loaded: Loaded) -> None:
    result = CliRunner().invoke(app, ["generate", PROMPT])
    assert result.exit_code == 0, result.output
    assert result.stdout == "The capital of France is Paris.\n"
    request = loaded.request
    assert request.messages == [{"role": "user", "content": PROMPT}]
    assert request.prompt is None
    assert request.max_tokens == 256  # MAX_NEW_TOKENS' default
    assert (request.temperature, request.seed) == (0.0, None)


def test_options_reach_the_request(loaded: Loaded) -> None:
    result = CliRunner().invoke(app, ["generate", PROMPT, "--raw", "--max-tokens", "7",
                                      "--temperature", "0.7", "--seed", "42"])
    assert result.exit_code == 0, result.output
    request = loaded.request
    assert (request.prompt, request.messages) == (PROMPT, None)
    assert (request.max_tokens, request.temperature, request.seed) == (7, 0.7, 42)


def test_max_new_tokens_from_the_environment_and_the_option_over_it(
        monkeypatch: pytest.MonkeyPatch, loaded: Loaded) -> None:
    monkeypatch.setenv("MAX_NEW_TOKENS", "12")
    assert CliRunner().invoke(app, ["generate", PROMPT]).exit_code == 0
    assert CliRunner().invoke(app, ["generate", PROMPT, "--max-tokens", "3"]).exit_code == 0
    assert [r.max_tokens for r in loaded.engine.requests] == [12, 3]


def test_engine_and_model_options_build_the_settings(loaded: Loaded) -> None:
    result = CliRunner().invoke(app, ["generate", PROMPT, "--engine", "openai",
                                      "--model", "Qwen/Qwen2.5-0.5B-Instruct"])
    assert result.exit_code == 0, result.output
    [settings] = loaded.settings
    assert (settings.engine, settings.model_name) == ("openai", "Qwen/Qwen2.5-0.5B-Instruct")


class Pieces(ScriptedEngine):
    """Streams the given pieces as they are, one delta each."""

    def __init__(self, *pieces: str) -> None:
        super().__init__(lambda r: "")
        self.pieces = pieces

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        self.requests.append(request)
        for text in self.pieces:
            yield StreamDelta(text=text)


def test_tokens_are_printed_as_they_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, Pieces("Par", "is", ".", " It is", " big."))
    result = CliRunner().invoke(app, ["generate", PROMPT])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Paris. It is big.\n"  # no separator between deltas


@pytest.mark.parametrize("text", ["Read [see](https://x.org).", "Done.[/INST]"])
def test_model_text_is_printed_as_written(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    install(monkeypatch, Pieces(text))
    result = CliRunner().invoke(app, ["generate", PROMPT])
    assert result.exit_code == 0, result.output
    assert result.stdout == text + "\n"


def test_the_real_lifecycle_starts_and_closes_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    monkeypatch.setattr(registry, "create_engine", lambda settings: engine)
    result = CliRunner().invoke(app, ["generate", PROMPT])
    assert result.exit_code == 0, result.output
    assert engine.started and engine.closed


@pytest.mark.parametrize(("args", "message"), [
    (["--max-tokens", "-5"], "error: max_tokens must be at least 1, got -5"),
    (["--temperature", "-1"], "error: temperature must be >= 0, got -1.0"),
])
def test_a_bad_request_option_exits_2_before_the_engine_loads(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, loaded: Loaded,
        args: list[str], message: str) -> None:
    assert run_main(monkeypatch, "generate", PROMPT, *args) == 2
    assert capsys.readouterr().err == message + "\n"
    assert loaded.settings == [] and loaded.engine.requests == []


def test_max_tokens_0_is_refused(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture, loaded: Loaded) -> None:
    assert run_main(monkeypatch, "generate", PROMPT, "--max-tokens", "0") == 2
    assert "max_tokens must be at least 1" in capsys.readouterr().err


def test_a_bad_setting_stops_with_its_name(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture,
                                           loaded: Loaded) -> None:
    monkeypatch.setenv("MAX_NEW_TOKENS", "lots")
    assert run_main(monkeypatch, "generate", PROMPT) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration: MAX_NEW_TOKENS='lots'")
    assert loaded.settings == []


def test_an_engine_error_exits_2_with_its_message(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    def script(request: GenerationRequest) -> str:
        raise EngineUnavailableError("the model is still loading")

    install(monkeypatch, ScriptedEngine(script))
    assert run_main(monkeypatch, "generate", PROMPT) == 2
    assert capsys.readouterr().err == "error: the model is still loading\n"


def test_models_lists_each_served_model(monkeypatch: pytest.MonkeyPatch) -> None:
    class TwoModels(ScriptedEngine):
        async def models(self) -> list[ModelInfo]:
            return [ModelInfo(id="base"), ModelInfo(id="base-lora")]

    loaded = install(monkeypatch, TwoModels(lambda r: ""))
    result = CliRunner().invoke(app, ["models", "--engine", "openai", "--model", "base"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "base\nbase-lora\n"
    assert (loaded.settings[0].engine, loaded.settings[0].model_name) == ("openai", "base")


def test_models_default_is_the_engine_model_id(loaded: Loaded) -> None:
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "scripted\n"
    assert loaded.engine.requests == []
