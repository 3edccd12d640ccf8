"""The optional vLLM engine is imported only when selected, and says how to install vLLM."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evalserve.engines.registry import create_engine
from evalserve.errors import ConfigurationError
from evalserve.settings import load_settings


def test_importing_the_engines_never_imports_vllm_or_torch() -> None:
    code = ("import sys; import evalserve.engines, evalserve.engines.vllm, "
            "evalserve.engines.registry; "
            "print(sorted(m for m in ('vllm', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_without_vllm_installed_the_error_gives_the_install_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # importing it raises ImportError
    with pytest.raises(ConfigurationError, match=r"pip install evalserve\[vllm\]"):
        create_engine(load_settings(engine="vllm", model_name="/models/any"))
