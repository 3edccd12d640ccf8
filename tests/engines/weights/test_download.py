"""Build-time download, without network: a fake snapshot function stands in for the hubs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalserve.cli.main import app
from evalserve.engines.weights import download as download_mod
from evalserve.engines.weights.download import (
    MANIFEST_NAME,
    download_model,
    hub_revision,
    model_path,
    snapshot_function,
)
from evalserve.engines.weights.loader import resolve_model_source
from evalserve.errors import ConfigurationError, InvalidInputError, NotFoundError


class FakeHub:
    """Writes a minimal model folder; ids in `missing` fail like the real hub clients."""

    def __init__(self, missing: dict[str, Exception] | None = None,
                 files: tuple[str, ...] = ("config.json", "model.safetensors")) -> None:
        self.calls: list[tuple[str, str, Path]] = []
        self.missing = missing or {}
        self.files = files

    def __call__(self, model_id: str, revision: str, local_dir: Path) -> str:
        self.calls.append((model_id, revision, local_dir))
        if model_id in self.missing:
            raise self.missing[model_id]
        for name in self.files:
            (local_dir / name).write_text("{}", encoding="utf-8")
        return str(local_dir)


class RepositoryNotFoundError(Exception):
    """Named like huggingface_hub's."""


class LocalEntryNotFoundError(Exception):
    """What huggingface_hub raises when the hub cannot be reached."""


def test_model_lands_where_the_server_loads_it_and_the_manifest_records_it(
        tmp_path: Path) -> None:
    hub = FakeHub()
    result = download_model("Qwen/Qwen2.5-0.5B-Instruct", model_dir=tmp_path / "model",
                            revision="master", source="hf", snapshot=hub)
    target = tmp_path / "model" / "Qwen" / "Qwen2.5-0.5B-Instruct"
    assert hub.calls == [("Qwen/Qwen2.5-0.5B-Instruct", "main", target)]
    assert (target / "config.json").exists()
    source = resolve_model_source(None, tmp_path / "model", "Qwen/Qwen2.5-0.5B-Instruct")
    assert (source.path, source.gguf) == (target, False)
    manifest = json.loads((tmp_path / "model" / MANIFEST_NAME).read_text())
    assert manifest["source"] == "hf"
    assert manifest["model"] == {"id": "Qwen/Qwen2.5-0.5B-Instruct", "revision": "main",
                                 "path": str(target.resolve())}
    assert manifest["draft"] is None and manifest["speculative_config"] is None
    assert result.manifest == tmp_path / "model" / MANIFEST_NAME


def test_draft_model_is_fetched_next_to_it_with_a_speculative_config(tmp_path: Path) -> None:
    hub = FakeHub()
    result = download_model("org/big", model_dir=tmp_path, source="modelscope",
                            draft_model_id="org/small", draft_revision="v1", snapshot=hub)
    assert [c[:2] for c in hub.calls] == [("org/big", "master"), ("org/small", "v1")]
    draft_dir = (tmp_path / "org" / "small").resolve()
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["draft"] == {"id": "org/small", "revision": "v1", "path": str(draft_dir)}
    assert manifest["speculative_config"] == {"model": str(draft_dir),
                                              "num_speculative_tokens": 5}
    assert result.speculative_config == manifest["speculative_config"]
    assert manifest["draft_error"] is None


def test_an_optional_draft_that_fails_does_not_fail_the_build(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    hub = FakeHub(missing={"org/small": RepositoryNotFoundError("404 org/small")})
    result = download_model("org/big", model_dir=tmp_path, draft_model_id="org/small",
                            draft_optional=True, snapshot=hub)
    assert result.draft is None
    assert result.draft_error is not None and "org/small" in result.draft_error
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["model"]["id"] == "org/big"
    assert manifest["draft"] is None and manifest["speculative_config"] is None
    assert "org/small" in manifest["draft_error"]
    assert "optional draft model org/small not downloaded" in caplog.text


def test_a_required_draft_that_fails_fails(tmp_path: Path) -> None:
    hub = FakeHub(missing={"org/small": RepositoryNotFoundError("404")})
    with pytest.raises(NotFoundError, match="org/small"):
        download_model("org/big", model_dir=tmp_path, draft_model_id="org/small", snapshot=hub)
    assert not (tmp_path / MANIFEST_NAME).exists()


@pytest.mark.parametrize(
    ("exc", "kind", "fragment"),
    [
        (RepositoryNotFoundError("404 Client Error"), NotFoundError, "was not found"),
        (type("RevisionNotFoundError", (Exception,), {})("no rev"), NotFoundError,
         "has no revision 'main'"),
        (LocalEntryNotFoundError("Got: ConnectError: Name or service not known\nmore"),
         ConfigurationError, "could not reach huggingface.co"),
        (OSError("disk full"), ConfigurationError, "could not download org/big"),
    ],
)
def test_hub_failures_say_what_to_do(tmp_path: Path, exc: Exception, kind: type,
                                     fragment: str) -> None:
    hub = FakeHub(missing={"org/big": exc})
    with pytest.raises(kind) as info:
        download_model("org/big", model_dir=tmp_path, snapshot=hub)
    assert fragment in info.value.message
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_a_download_without_config_json_is_refused(tmp_path: Path) -> None:
    hub = FakeHub(files=("model.gguf",))
    with pytest.raises(ConfigurationError, match="no config.json.*MODEL_NAME"):
        download_model("org/gguf-only", model_dir=tmp_path, snapshot=hub)


@pytest.mark.parametrize("bad", ["../etc", "/abs/path", "a/b/c", "org/..", ""])
def test_model_ids_cannot_escape_the_model_dir(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInputError, match="not a hub id"):
        model_path(tmp_path, bad)


def test_revision_mapping() -> None:
    assert hub_revision("hf", "master") == "main"
    assert hub_revision("hf", None) == "main"
    assert hub_revision("hf", "v1.0") == "v1.0"
    assert hub_revision("modelscope", "master") == "master"
    assert hub_revision("modelscope", None) == "master"


def test_missing_hub_library_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelscope", None)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    for source in ("modelscope", "hf"):
        with pytest.raises(ConfigurationError, match=r"pip install 'evalserve\[download\]'"):
            snapshot_function(source)
    with pytest.raises(InvalidInputError, match="not one of hf, modelscope"):
        snapshot_function("s3")


def test_modelscope_is_called_with_local_dir_and_too_old_versions_are_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []

    def new_api(model_id: str, revision: str = "master", local_dir: str | None = None) -> str:
        calls.append((model_id, revision, local_dir))
        Path(local_dir or "").joinpath("config.json").write_text("{}")
        return str(local_dir)

    def old_api(model_id: str, revision: str = "master", cache_dir: str | None = None) -> str:
        raise AssertionError("never reached")

    monkeypatch.setitem(sys.modules, "modelscope", type(sys)("modelscope"))
    sys.modules["modelscope"].snapshot_download = new_api
    download_model("org/m", model_dir=tmp_path, source="modelscope")
    assert calls == [("org/m", "master", str(tmp_path / "org" / "m"))]
    sys.modules["modelscope"].snapshot_download = old_api
    with pytest.raises(ConfigurationError, match=r"modelscope>=1.18"):
        download_model("org/m", model_dir=tmp_path, source="modelscope")


def test_cli_downloads_with_settings_defaults(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    hub = FakeHub(missing={"org/draft": RepositoryNotFoundError("404")})
    monkeypatch.setattr(download_mod, "snapshot_function", lambda source: hub)
    monkeypatch.setenv("MODEL_ID", "org/model")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "m"))
    result = CliRunner().invoke(app, ["download", "--source", "modelscope",
                                      "--draft-model-id", "org/draft", "--draft-optional"])
    assert result.exit_code == 0, result.output
    assert hub.calls[0] == ("org/model", "master", tmp_path / "m" / "org" / "model")
    assert "optional draft model not downloaded" in result.output
    assert json.loads((tmp_path / "m" / MANIFEST_NAME).read_text())["source"] == "modelscope"


def test_cli_without_a_model_id_says_how_to_give_one() -> None:
    result = CliRunner().invoke(app, ["download"])
    assert isinstance(result.exception, ConfigurationError)
    assert "pass --model-id or set MODEL_ID" in result.exception.message
