"""Shared fixtures: settings in a temporary data dir, the shared converted-model cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evalserve.settings import Settings, load_settings

#: Converted bundled model, shared by every test and every server process the tests start.
MODEL_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "models"

_ENV_PREFIXES = ("MODEL_", "API_TOKEN", "TEXT_GEN_API_TOKEN", "VLLM_ENDPOINT", "REDIS_",
                 "ENGINE", "BATCH_MODE", "MAX_", "DATA_DIR", "MLFLOW_TRACKING_URI")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's environment or .env file."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", model_cache_dir=MODEL_CACHE,
                         metrics_port=0)
