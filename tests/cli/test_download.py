"""`evalserve download` from the command line: what it prints, and how a missing extra, a bad
argument or a failed fetch stop it with exit code 2. Never touches the network: the hub client
is a fake or is made unimportable (the library itself: tests/engines/weights/test_download.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalserve.cli.main import app
from evalserve.engines.weights import download as download_mod
from evalserve.engines.weights.download import MANIFEST_NAME
from tests.cli.helpers import run_main


class FakeHub:
    """A snapshot function that writes a model folder, or raises for ids in `failing`."""

    def __init__(self, failing: dict[str, Exception] | None = None) -> None:
        self.calls: list[tuple[str, str, Path]] = []
        self.failing = failing or {}

    def __call__(self, model_id: str, revision: str, local_dir: Path) -> str:
        self.calls.append((model_id, revision, local_dir))
        if model_id in self.failing:
            raise self.failing[model_id]
        (local_dir / "config.json").write_text("{}", encoding="utf-8")
        return str(local_dir)


class RepositoryNotFoundError(Exception):
    """Named like huggingface_hub's."""


class LocalEntryNotFoundError(Exception):
    """What huggingface_hub raises when the hub cannot be reached."""


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    fake = FakeHub()
    monkeypatch.setattr(download_mod, "snapshot_function", lambda source: fake)
    return fake


@pytest.fixture
def no_hub_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `download` extra is not installed."""
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    monkeypatch.setitem(sys.modules, "modelscope", None)


def squashed(text: str) -> str:
    """`text` without any whitespace (rich folds even a path at 80 columns)."""
    return "".join(text.split())


def one_line(text: str) -> str:
    """`text` with rich's wrapping undone (it wraps at 80 columns off a terminal)."""
    return " ".join(text.split())


def test_download_prints_where_the_model_and_manifest_went(tmp_path: Path,
                                                           hub: FakeHub) -> None:
    result = CliRunner().invoke(app, ["download", "--model-id", "org/model", "--dir",
                                      str(tmp_path / "models")])
    assert result.exit_code == 0, result.output
    target = tmp_path / "models" / "org" / "model"
    assert hub.calls == [("org/model", "main", target)]  # MODEL_REVISION master is main on HF
    output = squashed(result.output)
    assert f"modelorg/model@main->{target}" in output
    assert f"manifest:{tmp_path / 'models' / MANIFEST_NAME}" in output
    assert "draft" not in output
    manifest = json.loads((tmp_path / "models" / MANIFEST_NAME).read_text())
    assert manifest["model"] == {"id": "org/model", "revision": "main", "path": str(target)}


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          hub: FakeHub) -> None:
    monkeypatch.setenv("MODEL_ID", "org/from-env")
    monkeypatch.setenv("MODEL_REVISION", "v0")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "env-dir"))
    result = CliRunner().invoke(app, ["download", "--model-id", "org/from-cli", "--revision",
                                      "v2", "--dir", str(tmp_path / "cli-dir")])
    assert result.exit_code == 0, result.output
    assert hub.calls == [("org/from-cli", "v2", tmp_path / "cli-dir" / "org" / "from-cli")]
    assert not (tmp_path / "env-dir").exists()


def test_a_draft_model_is_reported(tmp_path: Path, hub: FakeHub) -> None:
    result = CliRunner().invoke(app, ["download", "--model-id", "org/model", "--dir",
                                      str(tmp_path), "--draft-model-id", "org/draft",
                                      "--draft-revision", "r1"])
    assert result.exit_code == 0, result.output
    assert [c[:2] for c in hub.calls] == [("org/model", "main"), ("org/draft", "r1")]
    assert f"draftorg/draft@r1->{tmp_path / 'org' / 'draft'}" in squashed(result.output)


def test_printed_paths_are_not_broken(tmp_path: Path, hub: FakeHub) -> None:
    deep = tmp_path / ("d" * 60)
    result = CliRunner().invoke(app, ["download", "--model-id", "org/model", "--dir",
                                      str(deep)])
    assert result.exit_code == 0, result.output
    assert f"manifest: {deep / MANIFEST_NAME}\n" in result.output


def test_without_a_model_id_it_says_how_to_give_one_and_creates_nothing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path,
        hub: FakeHub) -> None:
    assert run_main(monkeypatch, "download", "--dir", str(tmp_path / "models")) == 2
    assert capsys.readouterr().err == (
        "error: no model to download: pass --model-id or set MODEL_ID\n")
    assert hub.calls == [] and not (tmp_path / "models").exists()


@pytest.mark.parametrize(("source", "needs"), [
    ("hf", "downloading from Hugging Face needs huggingface_hub: pip install"),
    ("modelscope", "downloading from ModelScope needs modelscope: pip install"),
])
@pytest.mark.usefixtures("no_hub_clients")
def test_without_the_extra_it_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path,
        source: str, needs: str) -> None:
    code = run_main(monkeypatch, "download", "--model-id", "org/model", "--source", source,
                    "--dir", str(tmp_path / "models"))
    assert code == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"error: {needs} 'evalserve")
    assert not (tmp_path / "models").exists()


@pytest.mark.usefixtures("no_hub_clients")
def test_without_the_extra_the_hint_names_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture,
                                                    tmp_path: Path) -> None:
    assert run_main(monkeypatch, "download", "--model-id", "org/model", "--dir",
                    str(tmp_path)) == 2
    assert "pip install 'evalserve[download]'" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(("args", "message"), [
    (["--model-id", "org/model", "--source", "s3"],
     "error: invalid configuration: MODEL_SOURCE='s3': Input should be 'hf' or 'modelscope'"),
    (["--model-id", "../../etc"], "error: model id '../../etc' is not a hub id"),
    (["--model-id", "org/model", "--draft-model-id", "org/../../x"],
     "error: model id 'org/../../x' is not a hub id"),
])
def test_bad_arguments_exit_2_before_fetching(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path,
        hub: FakeHub, args: list[str], message: str) -> None:
    assert run_main(monkeypatch, "download", *args, "--dir", str(tmp_path / "models")) == 2
    assert one_line(capsys.readouterr().err).startswith(message)
    assert hub.calls == [] and not (tmp_path / "models").exists()


@pytest.mark.parametrize(("failing", "args", "message"), [
    ({"org/model": LocalEntryNotFoundError("offline")}, [],
     "error: could not reach huggingface.co to download org/model: "
     "LocalEntryNotFoundError: offline. Downloads need network access at build time"),
    ({"org/draft": RepositoryNotFoundError("404")}, ["--draft-model-id", "org/draft"],
     "error: org/draft (revision 'main') was not found on huggingface.co or needs access: "
     "check --model-id and --source"),
])
def test_a_failed_fetch_exits_2_saying_what_to_do(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path,
        failing: dict[str, Exception], args: list[str], message: str) -> None:
    fake = FakeHub(failing)
    monkeypatch.setattr(download_mod, "snapshot_function", lambda source: fake)
    assert run_main(monkeypatch, "download", "--model-id", "org/model", "--dir",
                    str(tmp_path), *args) == 2
    assert one_line(capsys.readouterr().err).startswith(message)
    assert not (tmp_path / MANIFEST_NAME).exists()

