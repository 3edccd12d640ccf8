"""Choosing the engine from the settings, and the one create-start-close lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.engines import registry
from evalserve.engines.openai import OpenAIEngine
from evalserve.engines.registry import ENGINES, create_engine, running
from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.errors import ConfigurationError
from evalserve.settings import Settings, load_settings
from tests.fakes import ScriptedEngine


class FailingStart(ScriptedEngine):
    async def start(self) -> None:
        raise ConfigurationError("no weights")


def scripted(monkeypatch: pytest.MonkeyPatch, engine: ScriptedEngine) -> None:
    monkeypatch.setattr(registry, "create_engine", lambda settings: engine)


async def test_running_starts_the_engine_and_closes_it_on_exit(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    scripted(monkeypatch, engine)
    async with running(settings) as got:
        assert got is engine
        assert engine.started and not engine.closed
    assert engine.closed


async def test_running_closes_the_engine_when_the_body_fails(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    scripted(monkeypatch, engine)
    with pytest.raises(KeyError):
        async with running(settings):
            raise KeyError("boom")
    assert engine.closed


async def test_running_closes_an_engine_that_failed_to_start(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    engine = FailingStart(lambda r: "ok")
    scripted(monkeypatch, engine)
    with pytest.raises(ConfigurationError, match="no weights"):
        async with running(settings):
            raise AssertionError("the body must not run")
    assert engine.closed


def test_each_engine_setting_builds_its_engine_without_starting_it(tmp_path: Path) -> None:
    local = create_engine(load_settings(data_dir=tmp_path))
    assert isinstance(local, TransformersEngine) and local.model is None
    proxy = create_engine(load_settings(engine="openai", vllm_endpoint="http://up:8000/v1"))
    assert isinstance(proxy, OpenAIEngine) and proxy.loaded_at is None


def test_an_unknown_engine_names_the_choices() -> None:
    settings = load_settings().model_copy(update={"engine": "tpu"})
    with pytest.raises(ConfigurationError) as info:
        create_engine(settings)
    assert info.value.message == "ENGINE='tpu' is not one of transformers, openai, vllm"
    assert ENGINES == ("transformers", "openai", "vllm")
