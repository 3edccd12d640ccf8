"""The tiny random model, built once per session (a fraction of a second)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engines.transformers.tiny import tiny_model


@pytest.fixture(scope="session")
def model() -> Any:
    return tiny_model()
