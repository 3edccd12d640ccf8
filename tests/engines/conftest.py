"""One real engine on the bundled model, shared by the engine tests (loading costs seconds)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.settings import load_settings
from tests.conftest import MODEL_CACHE


async def start_engine(tmp: Path, **overrides: object) -> TransformersEngine:
    settings = load_settings(data_dir=tmp, model_cache_dir=MODEL_CACHE, **overrides)
    engine = TransformersEngine.from_settings(settings)
    await engine.start()
    return engine


@pytest.fixture(scope="session")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TransformersEngine]:
    eng = await start_engine(tmp_path_factory.mktemp("engine"), max_num_seqs=32)
    yield eng
    await eng.close()
