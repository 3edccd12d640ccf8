"""Shared fixtures: settings in a temporary data dir, the shared converted-model cache; the
loader of `scripts/` generators."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from evalserve.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent

#: Converted bundled model, shared by every test and every server process the tests start.
MODEL_CACHE = ROOT / ".cache" / "models"


def load_script(name: str) -> ModuleType:
    """Import `scripts/<name>.py` (the generators whose output tests compare with the repo)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ENV_PREFIXES = ("MODEL_", "API_TOKEN", "TEXT_GEN_API_TOKEN", "ADMIN_API_TOKEN",
                 "VLLM_ENDPOINT", "REDIS_", "ENGINE", "BATCH_MODE", "MAX_", "DATA_DIR",
                 "MLFLOW_TRACKING_URI", "UPSTREAMS_FILE", "DATABASE_", "REPLICA_ID", "OTEL_",
                 "INTERACTIVE_RESERVE")


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
