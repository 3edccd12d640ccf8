"""`loaded_engine`: the configured engine, started for the command and closed after it."""

from __future__ import annotations

import pytest
from rich.console import Console

from evalserve.cli.engine import loaded_engine
from evalserve.engines import registry
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine


async def test_the_engine_is_started_for_the_block_and_closed_after(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    monkeypatch.setattr(registry, "create_engine", lambda s: engine)
    async with loaded_engine(settings, Console(quiet=True)) as got:
        assert got is engine and engine.started and not engine.closed
    assert engine.closed


async def test_an_error_in_the_block_still_closes_the_engine(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: "ok")
    monkeypatch.setattr(registry, "create_engine", lambda s: engine)
    with pytest.raises(RuntimeError, match="boom"):
        async with loaded_engine(settings, Console(quiet=True)):
            raise RuntimeError("boom")
    assert engine.closed
