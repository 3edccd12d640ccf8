"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest

from evalserve.engines import registry
from tests.fakes import ScriptedEngine


@pytest.fixture
def judge(monkeypatch: pytest.MonkeyPatch) -> ScriptedEngine:
    """The engine `evalserve metrics`/`calibrate` would load, replaced by a scripted judge."""
    engine = ScriptedEngine(lambda r: '{"score": 5}')
    monkeypatch.setattr(registry, "create_engine", lambda settings: engine)
    return engine
