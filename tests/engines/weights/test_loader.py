"""Where the served model comes from, and the converted-model cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.engines.weights.bundled import BUNDLED_MODEL_ID, bundled_gguf_path
from evalserve.engines.weights.loader import converted_dir, resolve_dtype, resolve_model_source
from evalserve.errors import ConfigurationError
from tests.conftest import MODEL_CACHE


def test_default_is_the_bundled_gguf() -> None:
    source = resolve_model_source(None, Path("model"))
    assert source.model_id == BUNDLED_MODEL_ID
    assert source.gguf
    assert source.path == bundled_gguf_path()
    assert source.path.stat().st_size > 50_000_000


def test_a_downloaded_model_id_is_served_from_model_dir(tmp_path: Path) -> None:
    target = tmp_path / "org" / "qa-model"
    target.mkdir(parents=True)
    assert resolve_model_source(None, tmp_path, "org/qa-model").gguf  # no config.json yet
    (target / "config.json").write_text("{}")
    source = resolve_model_source(None, tmp_path, "org/qa-model")
    assert (source.model_id, source.path, source.gguf) == ("org/qa-model", target, False)


def test_model_name_directory_and_gguf_file(tmp_path: Path) -> None:
    (tmp_path / "my-model").mkdir()
    assert resolve_model_source(str(tmp_path / "my-model"), tmp_path).model_id == "my-model"
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    source = resolve_model_source(str(gguf), tmp_path)
    assert (source.model_id, source.gguf) == ("tiny", True)


@pytest.mark.parametrize("name", ["nowhere", "weights.bin"])
def test_a_missing_or_unusable_model_name_says_what_to_do(tmp_path: Path, name: str) -> None:
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ConfigurationError) as info:
        resolve_model_source(str(tmp_path / name), tmp_path)
    assert "MODEL_NAME" in info.value.message


def test_conversion_cache_key_follows_the_file(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"one")
    source = resolve_model_source(str(gguf), tmp_path)
    first = converted_dir(source, MODEL_CACHE)
    assert first == converted_dir(source, MODEL_CACHE)
    gguf.write_bytes(b"other content")
    assert converted_dir(source, MODEL_CACHE) != first


def test_dtype_auto_depends_on_device() -> None:
    assert resolve_dtype("float16", "cpu") == "float16"
    assert resolve_dtype("auto", "cuda") == "bfloat16"
    assert resolve_dtype("auto", "cpu") in {"bfloat16", "float32"}
